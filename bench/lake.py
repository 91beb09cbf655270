"""Benchmark: the warehouse on DuckLake (PostgreSQL 15 catalog, Parquet on S3) versus a DuckDB file.

Real services, as the lake tests use them: a throwaway PostgreSQL cluster from
/usr/lib/postgresql/<major>/bin as the catalog and moto's S3 server in its own process on
127.0.0.1 for the data files (`bench/lake_services.py`). In one run it prints, side by side:

1. Backfill + derived rebuild: the same days, fetched once from the simulator over HTTP
   into one stage, then swapped into a DuckDB file, a lake with its files in a local
   directory and a lake on S3, and every derived table rebuilt for those days; the
   pipeline's own code (`swap_partitions`, `rebuild_partitions`) on each.
2. Writers on different days: the same days written (swap + every derived table, one
   connection per day as a run's steps open it) by one process, by two and by four
   processes at once, each with its own scratch directory, sharing only the catalog and
   the bucket; a DuckDB file with one writer and with two (which take turns through the
   writer lock); and the lake's writers again taking turns (a lock standing in for a
   `siro_duckdb` pool limit of 1). Wall time from a common start, recordings/s, and the
   lake's conflict re-runs (`retry_lake_conflicts`).
3. A consumer reading while a writer commits: one process opens a read-only connection and
   runs one query, over and over, while another process rewrites the days (newer versions
   of every recording). On a lake the reads go on; on a file a reader cannot open the file
   while the writer holds it (and a reader holding it makes the writer wait).

    python bench/lake.py [--quick] [--days N] [--per-day N] [--writers 1,2,4]
        [--parts backfill,writers,reader] [--swap-only]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import multiprocessing
import statistics
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from filelock import FileLock
from harness import machine, parse_free_fetch, quick_mode, simulator_server, weekdays
from lake_services import lake_services

from siro_assets.api_client import AsyncSiroClient, RequestPacer
from siro_assets.pipeline.ingest.fetch_days import stage_days
from siro_assets.simulator import World, WorldConfig
from siro_assets.transforms import DERIVED_TABLES, rebuild_partitions
from siro_assets.warehouse.backend import open_warehouse, writer_slot
from siro_assets.warehouse.schema import ensure_schema
from siro_assets.warehouse.staging import RecordingsStage
from siro_assets.warehouse.swap import swap_partitions

NOW = datetime(2026, 4, 1, tzinfo=timezone.utc)
MP = multiprocessing.get_context("spawn")  # no DuckDB or PostgreSQL handle crosses a fork
READ_QUERY = (
    "SELECT 'recordings', partition_date, count(*) FROM siro.recordings GROUP BY ALL "
    "UNION ALL SELECT 'summaries', partition_date, count(*) FROM siro.recording_summaries GROUP BY ALL"
)


# --- helpers shared by the parts -----------------------------------------------------------------

def _open(target, *, read_only: bool = False, lock_timeout: float = 900.0):
    kind, where = target[:2]
    if kind == "file":
        con = open_warehouse(where, read_only=read_only, lock_timeout=lock_timeout)
    else:
        con = open_warehouse(lake=where, read_only=read_only)
    con.execute("SET enable_progress_bar = false")  # children share the terminal
    return con


def _slot(target):
    """The writer slot a run's write takes: the lock file beside a DuckDB file, nothing on a
    lake, or (a lake "taking turns") a lock file standing in for a pool limit of 1."""
    kind, where = target[:2]
    if kind == "file":
        return writer_slot(where, lake=False)
    if len(target) > 2:
        return FileLock(target[2])
    return writer_slot(None, lake=True)


def _rebuild_all(con, days) -> None:
    for table in DERIVED_TABLES:
        rebuild_partitions(con, table, days)


def _world_stage(directory: Path, day: date, per_day: int, *, edited: int = 0) -> RecordingsStage:
    """One day of the simulated world staged as the raw asset stages it (pages of 100);
    `edited` > 0: every recording that many hours newer, so a swap really replaces the day's rows."""
    world = World(WorldConfig(recordings_per_day=per_day))
    start = datetime.combine(day, datetime.min.time(), timezone.utc)
    records = world.recordings(NOW, created_from=start, created_to=start + timedelta(days=1))
    if edited:
        later = lambda ts: (datetime.fromisoformat(ts.replace("Z", "+00:00")) + timedelta(hours=edited))  # noqa: E731
        records = [{**r, "title": f"{r['title']} (edit {edited})",
                    "updatedAt": later(r["updatedAt"]).isoformat().replace("+00:00", "Z")} for r in records]
    stage = RecordingsStage(directory=directory, ingested_at=NOW)
    for at in range(0, len(records), 100):
        stage.add_page(json.dumps({"data": records[at:at + 100], "cursor": None}))
    stage.finalize([day])
    return stage


class _RetryCounter(logging.Handler):
    """Counts `retry_lake_conflicts`' "Retrying ..." lines: one per lost commit race."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("Retrying"):
            self.count += 1


def _count_retries() -> _RetryCounter:
    counter = _RetryCounter()
    log = logging.getLogger("siro_assets.warehouse")
    log.setLevel(logging.INFO)
    log.addHandler(counter)
    return counter


def _fresh_target(kind: str, services, tmp: Path, label: str):
    if kind == "file":
        return ("file", str(tmp / f"{label}.duckdb"))
    return ("lake", services.new_lake(on_s3=kind == "s3"))


def _seed(target, days, per_day, scratch: Path) -> None:
    """The warehouse already holds history: `days` written, every table created."""
    con = _open(target)
    try:
        ensure_schema(con)
        for day in days:
            stage = _world_stage(scratch, day, per_day)
            swap_partitions(con, stage, [day])
            stage.close()
        _rebuild_all(con, days)
    finally:
        con.close()


# --- 1. backfill + derived rebuild ----------------------------------------------------------------

def backfill_and_derived(services, tmp: Path, days: list[date], per_day: int) -> None:
    print(f"\n## 1. backfill + derived rebuild, {len(days)} days at ~{per_day:,}/day (same stage for all)")
    with simulator_server(now=NOW, recordings_per_day=per_day, page_size_cap=1000) as url:
        parse_free_fetch(url, days, page_size=1000)  # warms the simulator's days
        stage = RecordingsStage(directory=tmp)
        started = time.perf_counter()

        async def fetch():
            async with AsyncSiroClient("bench-token", url, pacer=RequestPacer(math.inf)) as client:
                return await stage_days(client, stage, days)

        asyncio.run(fetch())
        summary = stage.finalize(days)
        print(f"fetch + stage (once, shared): {summary.rows:,} recordings in {time.perf_counter() - started:.1f} s")
    rows = []
    for kind, label in (("file", "DuckDB file"), ("directory", "lake, local directory"), ("s3", "lake, S3 (moto)")):
        target = _fresh_target(kind, services, tmp, f"backfill-{kind}")
        t0 = time.perf_counter()
        con = _open(target)
        t_open = time.perf_counter() - t0
        t0 = time.perf_counter()
        swap_partitions(con, stage, days)
        t_swap = time.perf_counter() - t0
        t0 = time.perf_counter()
        _rebuild_all(con, days)
        t_derived = time.perf_counter() - t0
        if kind == "file":
            con.execute("CHECKPOINT")
        con.close()
        rows.append((label, t_open, t_swap, t_derived, _size_mib(kind, target, services)))
    stage.close()
    print(f"{'':24} {'open':>7} {'swap':>7} {'derived':>8} {'total':>7} {'stored':>10}")
    for label, t_open, t_swap, t_derived, mib in rows:
        print(f"{label:24} {t_open:6.2f}s {t_swap:6.2f}s {t_derived:7.2f}s {t_swap + t_derived:6.2f}s "
              f"{mib:7.1f} MiB")
    base = rows[0][2] + rows[0][3]
    print("lake vs file, swap + derived: " + ", ".join(f"{r[0]} {(r[2] + r[3]) / base:.1f}x" for r in rows[1:]))


def _size_mib(kind: str, target, services) -> float:
    if kind == "file":
        return Path(target[1]).stat().st_size / 2**20
    if kind == "directory":
        return sum(f.stat().st_size for f in Path(target[1].data_path).rglob("*")) / 2**20
    import boto3

    s3 = boto3.client("s3", endpoint_url=services.s3_endpoint, region_name="us-east-1",
                      aws_access_key_id="bench-key", aws_secret_access_key="bench-secret")
    prefix = target[1].data_path.split("/", 3)[3]
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket="siro-lake", Prefix=prefix)
    return sum(o["Size"] for page in pages for o in page.get("Contents", [])) / 2**20


# --- 2. one, two and four writers on different days -----------------------------------------------

def _writer(target, days: list[str], per_day: int, scratch: str, edited: int, swap_only: bool, start,
            out) -> None:
    """A machine of its own: stages its days, waits for the others, then writes them."""
    retries = _count_retries()
    try:
        parsed = [date.fromisoformat(d) for d in days]
        Path(scratch).mkdir(parents=True, exist_ok=True)
        stages = [_world_stage(Path(scratch), d, per_day, edited=edited) for d in parsed]
        start.wait(timeout=600)
        began = time.time()
        rows = 0
        for day, stage in zip(parsed, stages):
            with _slot(target):  # a run's step: the writer slot (a file only) around one connection
                con = _open(target)
                try:
                    rows += swap_partitions(con, stage, [day])
                    if not swap_only:
                        _rebuild_all(con, [day])
                finally:
                    con.close()
            stage.close()
        out.put({"rows": rows, "began": began, "ended": time.time(), "retries": retries.count, "error": None})
    except BaseException as exc:  # reported by the parent, which prints it
        out.put({"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}", "retries": retries.count})


def _run_writers(target, days: list[date], writers: int, per_day: int, scratch: Path, *, edited: int = 0,
                 swap_only: bool = False) -> dict:
    share = [days[k::writers] for k in range(writers)]
    start, out = MP.Barrier(writers), MP.Queue()
    procs = [MP.Process(target=_writer, args=(target, [d.isoformat() for d in mine], per_day,
                                              str(scratch / f"writer{k}"), edited, swap_only, start, out))
             for k, mine in enumerate(share)]
    for p in procs:
        p.start()
    results = [out.get(timeout=1800) for _ in procs]
    for p in procs:
        p.join()
    errors = sorted({r["error"] for r in results if r["error"]})
    if errors:
        return {"error": f"{len([r for r in results if r['error']])} of {writers} writers failed after "
                         f"{sum(r['retries'] for r in results)} re-runs in all: {'; '.join(errors)}"}
    wall = max(r["ended"] for r in results) - min(r["began"] for r in results)
    rows = sum(r["rows"] for r in results)
    return {"wall": wall, "rows": rows, "per_s": rows / wall, "retries": sum(r["retries"] for r in results),
            "error": None}


def writers(services, tmp: Path, days: list[date], per_day: int, counts: tuple[int, ...],
            swap_only: bool = False) -> None:
    work = "the raw swap only (what runs outside the pool on a lake)" if swap_only else "swap + every derived table"
    print(f"\n## 2. writers on different days: {len(days)} days at ~{per_day:,}/day, {work} per day, "
          "one connection per day")
    seed = [days[0] - timedelta(days=7)]
    lines = []
    plan = [("file", 1, "DuckDB file"), ("file", 2, "DuckDB file")]
    plan += [("s3", n, "lake on S3") for n in counts]
    plan += [("s3", n, "lake, turns") for n in counts if n > 1]
    for kind, n, label in plan:
        target = _fresh_target(kind, services, tmp, f"writers-{kind}-{n}")
        if label == "lake, turns":
            target = (*target, str(tmp / f"turns-{n}.lock"))
        _seed(target, seed, per_day, tmp)
        result = _run_writers(target, days, n, per_day, tmp / f"w-{label.replace(' ', '')}-{n}",
                              swap_only=swap_only)
        lines.append((label, n, result))
    base = next(r["per_s"] for label, n, r in lines if label.startswith("lake") and n == 1 and not r["error"])
    print(f"{'':14} {'writers':>7} {'wall':>8} {'recordings/s':>13} {'vs 1 lake writer':>17} {'re-runs':>8} "
          f"{'rows':>7}")
    for label, n, r in lines:
        if r["error"]:
            print(f"{label:14} {n:7} FAILED: {r['error']}")
            continue
        print(f"{label:14} {n:7} {r['wall']:7.2f}s {r['per_s']:13,.0f} {r['per_s'] / base:16.2f}x {r['retries']:8} "
              f"{r['rows']:7}")


# --- 3. read latency while a writer commits --------------------------------------------------------

def _reader(target, stop, out) -> None:
    """A consumer: open read-only, run the query, close; again every 50 ms until `stop`."""
    reads = []
    while not stop.is_set():
        began, t0 = time.time(), time.perf_counter()
        try:
            con = _open(target, read_only=True, lock_timeout=0.0)
            t1 = time.perf_counter()
            try:
                con.execute(READ_QUERY).fetchall()
            finally:
                con.close()
            reads.append((began, t1 - t0, time.perf_counter() - t1, None))
        except Exception as exc:  # the file's lock: the point of the measurement
            reads.append((began, time.perf_counter() - t0, 0.0, str(exc).splitlines()[0][:160]))
        time.sleep(0.05)
    out.put(reads)


def reader_latency(services, tmp: Path, days: list[date], per_day: int) -> None:
    print(f"\n## 3. one consumer reading (open read-only + query + close, every 50 ms) while one writer "
          f"rewrites {len(days)} days")
    print(f"{'':12} {'phase':8} {'reads':>6} {'failed':>6} {'open p50':>9} {'query p50':>10} "
          f"{'p95':>7} {'max':>7} {'longest gap':>12} {'writer wall':>12}")
    for kind, label in (("file", "DuckDB file"), ("s3", "lake on S3")):
        target = _fresh_target(kind, services, tmp, f"reader-{kind}")
        _seed(target, days, per_day, tmp)
        alone = _run_writers(target, days, 1, per_day, tmp / f"a-{kind}", edited=1)
        print(f"{label:12} the same rewrite with no reader: "
              + (f"{alone['wall']:.2f}s" if not alone["error"] else f"FAILED: {alone['error']}"))
        stop, out = MP.Event(), MP.Queue()
        reader = MP.Process(target=_reader, args=(target, stop, out))
        reader.start()
        time.sleep(6.0)  # reads with no writer first
        writing_from = time.time()
        result = _run_writers(target, days, 1, per_day, tmp / f"r-{kind}", edited=2)
        writing_to = time.time()
        time.sleep(1.0)
        stop.set()
        reads = out.get(timeout=120)
        reader.join()
        if result["error"]:
            print(f"{label:12} writer FAILED: {result['error']}")
        for phase, chosen in (("idle", [r for r in reads if r[0] < writing_from]),
                              ("writing", [r for r in reads if writing_from <= r[0] <= writing_to])):
            _reads_line(label, phase, chosen, writing_from if phase == "writing" else None, writing_to,
                        result.get("wall"))
        failures = {r[3] for r in reads if r[3]}
        if failures:
            print(f"{'':12} failed reads said: {sorted(failures)[0]}")


def _reads_line(label, phase, reads, began, ended, writer_wall) -> None:
    ok = [r for r in reads if r[3] is None]
    failed = len(reads) - len(ok)
    totals = sorted(r[1] + r[2] for r in ok)
    gap = None
    if began is not None:
        moments = [began] + [r[0] for r in ok] + [ended]
        gap = max(b - a for a, b in zip(moments, moments[1:]))
    p = lambda xs, q: xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")  # noqa: E731
    opens = statistics.median([r[1] for r in ok]) if ok else float("nan")
    queries = statistics.median([r[2] for r in ok]) if ok else float("nan")
    print(f"{label:12} {phase:8} {len(reads):6} {failed:6} {opens * 1000:7.0f}ms {queries * 1000:8.0f}ms "
          f"{p(totals, 0.95) * 1000:5.0f}ms {(totals[-1] if totals else float('nan')) * 1000:5.0f}ms "
          + (f"{gap:11.2f}s" if gap is not None else f"{'':12}")
          + (f" {writer_wall:11.2f}s" if writer_wall and phase == "writing" else ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4 weekdays of ~1,000 recordings")
    ap.add_argument("--days", type=int, help="weekdays to write (default 8, --quick 4)")
    ap.add_argument("--per-day", type=int, help="recordings per day (default 5,000, --quick 1,000)")
    ap.add_argument("--writers", default="1,2,4", help="writer counts on the lake (default 1,2,4)")
    ap.add_argument("--parts", default="backfill,writers,reader", help="which parts to run, in order")
    ap.add_argument("--swap-only", action="store_true", help="writers part: the raw swap alone, no derived tables")
    args = ap.parse_args()
    quick = args.quick or quick_mode()
    per_day = args.per_day or (1000 if quick else 5000)
    days = weekdays(date(2026, 3, 2), args.days or (4 if quick else 8))
    counts = tuple(int(n) for n in args.writers.split(","))
    print(f"# DuckLake (PostgreSQL catalog, moto S3) vs a DuckDB file\n# {machine()}")
    with tempfile.TemporaryDirectory() as tmp, lake_services(Path(tmp)) as services:
        tmp = Path(tmp)
        parts = {"backfill": lambda: backfill_and_derived(services, tmp, days, per_day),
                 "writers": lambda: writers(services, tmp, days, per_day, counts, args.swap_only),
                 "reader": lambda: reader_latency(services, tmp, days, per_day)}
        for part in args.parts.split(","):
            parts[part]()
    print(f"\n# done; {machine()}")


if __name__ == "__main__":
    main()
