"""Benchmark 3: peak RSS of the raw step for one day of 200,000 recordings.

The simulator serves the day over HTTP from its own process, so the peak printed is
the pipeline's own: the client, the page queue, the stage and the warehouse swap, in
this process. Bounded memory means this figure does not grow with the day.

    python bench/memory.py [--quick]       # --quick: a day of 20,000
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from datetime import date, datetime, timezone
from pathlib import Path

from harness import TOKEN, machine, parse_free_fetch, peak_rss_mib, quick_mode, simulator_server, warm_up

from siro_assets.api_client import AsyncSiroClient, RequestPacer
from siro_assets.pipeline.ingest.fetch_days import stage_days
from siro_assets.pipeline.ingest.recordings import SWAP_MEMORY_LIMIT
from siro_assets.warehouse.connection import duckdb_connection
from siro_assets.warehouse.staging import RecordingsStage, swap_partitions


def main() -> None:
    per_day = 20_000 if quick_mode() else 200_000
    day = date(2026, 3, 4)  # a Wednesday: about the nominal count
    now = datetime(2026, 4, 1, tzinfo=timezone.utc)
    print(f"# memory: one day of ~{per_day:,} recordings\n# {machine()}")
    with simulator_server(now=now, recordings_per_day=per_day, page_size_cap=1000) as url, \
            tempfile.TemporaryDirectory() as tmp:
        warm_up(url, [day])
        at_start = peak_rss_mib()
        started = time.perf_counter()
        with RecordingsStage(directory=tmp) as stage:
            async def fetch():
                async with AsyncSiroClient(TOKEN, url, pacer=RequestPacer(950)) as client:
                    return await stage_days(client, stage, [day])

            report = asyncio.run(fetch())
            after_fetch = peak_rss_mib()
            summary = stage.finalize([day])
            after_finalize = peak_rss_mib()
            with duckdb_connection(Path(tmp) / "memory.duckdb") as con:
                con.execute(f"SET memory_limit = '{SWAP_MEMORY_LIMIT}'")  # as the raw asset does
                rows = swap_partitions(con, stage, [day])
        seconds = time.perf_counter() - started
        peak = peak_rss_mib()
        # After the measured step, so its buffers do not count towards the step's peak.
        free = parse_free_fetch(url, [day], page_size=1000)
    print(f"parse-free fetch: {free.pages} pages, {free.bytes / 2**20:.0f} MiB in {free.seconds:.1f} s")
    print(f"raw step: {rows:,} recordings ({report.bytes / 2**20:.0f} MiB in {report.pages} pages) in "
          f"{seconds:.1f} s; stage rows {summary.rows:,}")
    print(f"peak RSS {peak:.0f} MiB (before the step {at_start:.0f}, after fetch + parse "
          f"{after_fetch:.0f}, after finalize {after_finalize:.0f})")


if __name__ == "__main__":
    main()
