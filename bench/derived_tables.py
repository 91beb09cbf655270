"""Benchmark 4: rebuilding every derived table over 1,000,000 recordings in `siro.recordings`.

A seed of real simulator pages (served over HTTP by the simulator in its own process,
staged and swapped in by the pipeline's own code) is copied under new ids and later
days until the raw table holds 1,000,000 recordings; then every derived
table is rebuilt over the whole range through `rebuild_partitions`, as a backfill's
derived steps do, on a warehouse connection with the production memory limit.

    python bench/derived_tables.py [--quick]      # --quick: 100,000 recordings
"""

from __future__ import annotations

import asyncio
import math
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from harness import machine, parse_free_fetch, peak_rss_mib, quick_mode, simulator_server, weekdays

from siro_assets.api_client import AsyncSiroClient, RequestPacer
from siro_assets.pipeline.ingest.fetch_days import stage_days
from siro_assets.transforms import DERIVED_TABLES, rebuild_partitions
from siro_assets.warehouse.connection import duckdb_connection
from siro_assets.warehouse.schema import RECORDINGS_COLUMN_NAMES
from siro_assets.warehouse.staging import RecordingsStage, swap_partitions

SEED_DAYS = 2
PER_DAY = 5000


def main() -> None:
    target = 100_000 if quick_mode() else 1_000_000
    seed_days = weekdays(date(2026, 3, 2), SEED_DAYS)
    now = datetime(2026, 4, 1, tzinfo=timezone.utc)
    print(f"# derived tables over {target:,} recordings in siro.recordings\n# {machine()}")
    with simulator_server(now=now, recordings_per_day=PER_DAY, page_size_cap=1000) as url, \
            tempfile.TemporaryDirectory() as tmp:
        free = parse_free_fetch(url, seed_days, page_size=1000)
        print(f"parse-free fetch of the seed pages: {free.pages} pages, {free.bytes / 2**20:.0f} MiB in "
              f"{free.seconds:.1f} s")
        db = Path(tmp) / "bench.duckdb"
        with RecordingsStage() as stage, duckdb_connection(db) as con:
            async def fetch():
                async with AsyncSiroClient("bench-token", url, pacer=RequestPacer(math.inf)) as client:
                    return await stage_days(client, stage, seed_days)

            asyncio.run(fetch())
            stage.finalize(seed_days)
            seed = swap_partitions(con, stage, seed_days)
            days = _replicate(con, seed, target)
        with duckdb_connection(db) as con:
            total = total_cpu = 0.0
            for table in DERIVED_TABLES:
                started, cpu = time.perf_counter(), time.process_time()
                rows = rebuild_partitions(con, table, days)
                seconds = time.perf_counter() - started
                total += seconds
                total_cpu += time.process_time() - cpu
                print(f"rebuild siro.{table.name}: {rows:,} rows in {seconds:.2f} s "
                      f"(CPU {time.process_time() - cpu:.2f} s)")
            recordings = con.execute("SELECT count(*) FROM siro.recordings").fetchone()[0]
        print(f"all derived tables over {recordings:,} recordings in {len(days)} days: {total:.1f} s = "
              f"{total / recordings * 1e6:.1f} s per million (CPU {total_cpu / recordings * 1e6:.1f} s per "
              f"million over both cores); peak RSS {peak_rss_mib():.0f} MiB")


def _replicate(con, seed_rows: int, target: int) -> list[date]:
    """Copy the seed under new ids onto later days until the table holds `target` rows."""
    copies = math.ceil(target / seed_rows)
    columns = ", ".join(RECORDINGS_COLUMN_NAMES)
    shifted = ", ".join(
        f"{name} || '_c' || k" if name == "id"
        else f"{name} + to_days(k * {SEED_DAYS * 7})" if name in ("created_at", "updated_at", "partition_date")
        # Derived tables never read `payload` (a test checks every plan) and storage is
        # columnar, so copies carry a stand-in: setting up a million full payloads would
        # cost minutes and change nothing measured.
        else "json_object('id', id || '_c' || k)" if name == "payload"
        else name
        for name in RECORDINGS_COLUMN_NAMES
    )
    started = time.perf_counter()
    con.execute("CREATE TEMP TABLE seed AS SELECT * FROM siro.recordings")
    con.execute(
        f"INSERT INTO siro.recordings ({columns}) SELECT {shifted} FROM seed, range(1, {copies}) AS t(k)"
    )
    con.execute("DROP TABLE seed")
    con.execute("CHECKPOINT")
    days = [d for (d,) in con.execute("SELECT DISTINCT partition_date FROM siro.recordings ORDER BY 1").fetchall()]
    rows = con.execute("SELECT count(*) FROM siro.recordings").fetchone()[0]
    print(f"raw table: {rows:,} recordings over {len(days)} days (seed {seed_rows:,} copied {copies - 1}x "
          f"in {time.perf_counter() - started:.1f} s)")
    return days


if __name__ == "__main__":
    main()
