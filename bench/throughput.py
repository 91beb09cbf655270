"""Benchmark 2: throughput with no latency, from page bytes to committed rows.

About 30,000 enriched recordings (three weekdays), the simulator served over HTTP in
its own process with pages of up to 1,000. In one run it prints:

1. the parse-free fetch of the same pages (the physical limit: serving and moving them);
2. the raw step alone (fetch, stage, finalize, swap into a fresh warehouse);
3. the whole command, `dg launch --assets 'key:"siro/recordings"+ and not key:"siro/crm_writebacks"'`
   (raw + every derived table, a fresh Dagster instance and warehouse);
4. dlt's `rest_api` source into DuckDB, as users would set it up: cursor paginator,
   merge on `id`, every enrichment flag, page size 100 (`pip install -e '.[bench]'`).

    python bench/throughput.py [--quick]     # --quick: ~3,000 recordings
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from harness import ENRICHED, ROOT, TOKEN, machine, parse_free_fetch, quick_mode, simulator_server, weekdays

from siro_assets.api_client import AsyncSiroClient, RequestPacer
from siro_assets.api_client.query import created_window
from siro_assets.pipeline.ingest.fetch_days import stage_days
from siro_assets.warehouse.connection import duckdb_connection
from siro_assets.warehouse.staging import RecordingsStage, swap_partitions
from tests.e2e.processes import command_env

BIN = Path(sys.executable).parent


def main() -> None:
    per_day = 1000 if quick_mode() else 10_000
    days = weekdays(date(2026, 3, 2), 3)
    now = datetime(2026, 4, 1, tzinfo=timezone.utc)
    print(f"# throughput, no latency: {len(days)} weekdays at {per_day:,}/day nominal\n# {machine()}")
    with simulator_server(now=now, recordings_per_day=per_day, page_size_cap=1000) as url, \
            tempfile.TemporaryDirectory() as tmp:
        # Warm the simulator's day cache first, so no contender pays for generating the world.
        parse_free_fetch(url, days, page_size=1000)
        free = parse_free_fetch(url, days, page_size=1000)
        mib = free.bytes / 2**20
        print(f"parse-free fetch: {free.pages} pages, {mib:.0f} MiB in {free.seconds:.1f} s "
              f"({mib / free.seconds:.1f} MiB/s)")
        rows, seconds = raw_step(url, days, Path(tmp) / "raw.duckdb")
        _line("raw step (fetch, stage, swap)", rows, seconds, mib, free.seconds)
        rows, seconds = whole_command(url, days, Path(tmp))
        _line("whole command (dg launch, raw + derived)", rows, seconds, mib, free.seconds)
        dlt_seconds = None
        try:
            rows, dlt_seconds = dlt_rest_api(url, days, Path(tmp))
            _line("dlt rest_api -> duckdb (page size 100, merge on id)", rows, dlt_seconds, mib, free.seconds)
        except ImportError:
            print("dlt not installed: pip install -e '.[bench]' to compare")
        if dlt_seconds:
            print(f"whole command vs dlt: {dlt_seconds / seconds:.1f}x faster")


def _line(what: str, rows: int, seconds: float, mib: float, limit: float) -> None:
    print(f"{what}: {rows:,} recordings in {seconds:.1f} s = {rows / seconds:,.0f} recordings/s, "
          f"{mib / seconds:.1f} MiB/s of page bytes ({seconds / limit:.1f}x the parse-free fetch)")


def raw_step(url: str, days: list[date], db: Path) -> tuple[int, float]:
    started = time.perf_counter()
    with RecordingsStage(directory=db.parent) as stage:
        async def fetch():
            async with AsyncSiroClient(TOKEN, url, pacer=RequestPacer(950)) as client:
                return await stage_days(client, stage, days)

        asyncio.run(fetch())
        stage.finalize(days)
        with duckdb_connection(db) as con:
            rows = swap_partitions(con, stage, days)
    return rows, time.perf_counter() - started


def whole_command(url: str, days: list[date], tmp: Path) -> tuple[int, float]:
    db = tmp / "command.duckdb"
    env = command_env(tmp, SIRO_API_BASE_URL=url, SIRO_API_TOKEN=TOKEN, SIRO_DUCKDB_PATH=str(db),
                      SIRO_PARTITIONS_START="2026-01-01", VIRTUAL_ENV=str(BIN.parent), PYTHONPATH=str(ROOT))
    # The raw asset and its direct children, the six derived tables: not the CRM
    # writebacks further down, which deliver to a CRM (dlt does nothing of the kind).
    command = [str(BIN / "dg"), "launch", "--assets", 'key:"siro/recordings"+ and not key:"siro/crm_writebacks"',
               "--partition-range", f"{days[0]}...{days[-1]}"]
    started = time.perf_counter()
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode:
        raise SystemExit(result.stdout[-3000:] + result.stderr[-3000:])
    with duckdb_connection(db, read_only=True) as con:
        rows = con.execute("SELECT count(*) FROM siro.recordings").fetchone()[0]
    return rows, seconds


def dlt_rest_api(url: str, days: list[date], tmp: Path) -> tuple[int, float]:
    import dlt
    from dlt.sources.rest_api import rest_api_source

    first = datetime(days[0].year, days[0].month, days[0].day, tzinfo=timezone.utc)
    window = created_window(first, first + timedelta(days=(days[-1] - days[0]).days + 1),
                            page_size=100, **ENRICHED)
    source = rest_api_source({
        "client": {
            "base_url": url,
            "auth": {"type": "bearer", "token": TOKEN},
            "paginator": {"type": "cursor", "cursor_path": "cursor", "cursor_param": "cursor"},
        },
        "resources": [{
            "name": "recordings",
            "primary_key": "id",
            "write_disposition": "merge",
            "endpoint": {"path": "v1/core/recordings", "params": window.to_params(), "data_selector": "data"},
        }],
    })
    db = tmp / "dlt.duckdb"
    pipeline = dlt.pipeline(pipeline_name="siro_bench", destination=dlt.destinations.duckdb(str(db)),
                            dataset_name="siro_dlt", pipelines_dir=str(tmp / "dlt"))
    started = time.perf_counter()
    pipeline.run(source)
    seconds = time.perf_counter() - started
    with duckdb_connection(db, read_only=True) as con:
        rows = con.execute("SELECT count(*) FROM siro_dlt.recordings").fetchone()[0]
    return rows, seconds


if __name__ == "__main__":
    main()
