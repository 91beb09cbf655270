"""Benchmark 5: what a sensor-driven refresh costs for N changed recordings on days of 10,000.

The simulator serves an organization with 10,000 recordings a day over HTTP from its
own process, its clock frozen at T. The recordings changed in the last `delta` before T
(what one sensor tick sees) are listed the way the sensor lists them; then the run the
sensor would request is timed both ways: a full re-pull of the touched days (what
schedules and re-requested days do) and the changes-only run the sensor now requests
(`updatedAt` since the oldest change, every enrichment flag, upsert by id), each with
every derived table rebuilt for those days. Prints, per N, list requests and seconds per
run, against the parse-free fetch of the touched days' pages.

    python bench/sensor_refresh.py [--quick]     # --quick: days of 1,000
"""

from __future__ import annotations

import asyncio
import math
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from harness import TOKEN, machine, parse_free_fetch, quick_mode, simulator_server

from siro_assets.api_client import AsyncSiroClient, RecordingsQuery, RequestPacer, SiroClient
from siro_assets.api_client.timestamps import parse_ts
from siro_assets.pipeline.ingest.fetch_days import stage_days
from siro_assets.pipeline.ingest.refresh import stage_changed
from siro_assets.transforms import DERIVED_TABLES, rebuild_partitions
from siro_assets.warehouse.connection import duckdb_connection
from siro_assets.warehouse.staging import RecordingsStage, swap_partitions
from siro_assets.warehouse.upsert import upsert_recordings

NOW = datetime(2026, 3, 13, 15, 0, tzinfo=timezone.utc)  # a Friday afternoon
DELTAS = (timedelta(seconds=20), timedelta(minutes=3), timedelta(minutes=30))


def changed_since(url: str, since: datetime) -> tuple[int, list[date]]:
    """What a sensor tick sees: recordings updated after `since`, and their createdAt days."""
    with SiroClient(TOKEN, url, pacer=RequestPacer(math.inf)) as client:
        days: set[date] = set()
        changed = 0
        for page in client.iter_recording_pages(RecordingsQuery(updated_gt=since, page_size=1000)):
            changed += len(page.records)
            days.update(parse_ts(r["createdAt"]).date() for r in page.records)
    return changed, sorted(days)


def full_day_refresh(url: str, days: list[date], db: Path) -> tuple[int, int, float]:
    """The run the sensor requests today: re-pull the touched days whole, rebuild derived."""
    started = time.perf_counter()
    client = AsyncSiroClient(TOKEN, url, pacer=RequestPacer(950))
    with RecordingsStage(directory=db.parent) as stage:
        async def fetch():
            async with client:
                return await stage_days(client, stage, days)

        asyncio.run(fetch())
        stage.finalize(days)
        with duckdb_connection(db) as con:
            rows = swap_partitions(con, stage, days)
            for table in DERIVED_TABLES:
                rebuild_partitions(con, table, days)
    return client.stats.requests, rows, time.perf_counter() - started


def changes_only_refresh(url: str, days: list[date], since: datetime, db: Path) -> tuple[int, int, float]:
    """The run the sensor requests now: fetch what changed since `since`, upsert it by id,
    rebuild the touched days' derived rows."""
    started = time.perf_counter()
    client = AsyncSiroClient(TOKEN, url, pacer=RequestPacer(950))
    with RecordingsStage(directory=db.parent) as stage:
        async def fetch():
            async with client:
                return await stage_changed(client, stage, days, since)

        asyncio.run(fetch())
        stage.finalize(days)
        with duckdb_connection(db) as con:
            rows = upsert_recordings(con, stage)
            for table in DERIVED_TABLES:
                rebuild_partitions(con, table, days)
    return client.stats.requests, rows, time.perf_counter() - started


def main() -> None:
    per_day = 1000 if quick_mode() else 10_000
    print(f"# sensor-driven refresh on days of {per_day:,}\n# {machine()}")
    with simulator_server(now=NOW, recordings_per_day=per_day, page_size_cap=1000) as url, \
            tempfile.TemporaryDirectory() as tmp:
        for delta in DELTAS:
            changed, days = changed_since(url, NOW - delta)
            if not changed:
                print(f"changes in the last {delta}: none")
                continue
            free = parse_free_fetch(url, days, page_size=1000)
            db = Path(tmp) / "sensor.duckdb"
            requests, rows, seconds = full_day_refresh(url, days, db)
            print(f"{changed:,} changed in the last {delta} on {len(days)} day(s): full-day re-pull run "
                  f"{requests} list requests, {rows:,} recordings rewritten, {seconds:.1f} s "
                  f"(parse-free fetch of those days: {free.pages} pages in {free.seconds:.1f} s)")
            requests, rows, seconds = changes_only_refresh(url, days, NOW - delta, db)
            print(f"    changes-only run (sensor-driven): {requests} list requests "
                  f"(bound: changed / 1,000 + 2 = {changed / 1000 + 2:.1f}), {rows:,} recordings upserted, "
                  f"{seconds:.1f} s including the touched days' derived rows")


if __name__ == "__main__":
    main()
