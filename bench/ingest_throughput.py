"""Benchmark: one large day through the raw-ingest path, and the derived rebuilds after it.

Prints throughput and peak memory so the "memory stays bounded however large a day is"
promise is a measured figure. Not run by pytest (machines here are noisy).

    .venv/bin/python bench/ingest_throughput.py [recordings_per_day] [days]
"""

from __future__ import annotations

import asyncio
import math
import resource
import sys
import tempfile
import time
import tracemalloc
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from siro_assets.ingest import stage_days  # noqa: E402
from siro_assets.siro import AsyncSiroClient, RequestPacer, RetryPolicy  # noqa: E402
from siro_assets.simulator import FixedClock, SimulatorApi, SimulatorTransport, World, WorldConfig  # noqa: E402
from siro_assets.transforms import DERIVED_TABLES, rebuild_partitions  # noqa: E402
from siro_assets.warehouse.connection import duckdb_connection  # noqa: E402
from siro_assets.warehouse.staging import RecordingsStage, swap_partitions  # noqa: E402


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    per_day = int(sys.argv[1]) if len(sys.argv) > 1 else 5_000
    n_days = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    first = date(2026, 3, 1)
    days = [first + timedelta(days=i) for i in range(n_days)]
    now = datetime(2026, 3, 20, tzinfo=timezone.utc)
    world = World(WorldConfig(recordings_per_day=per_day))

    started = time.perf_counter()
    for day in days:
        world.day(day)  # generate the world first so the figures below are the pipeline's
    generate_s = time.perf_counter() - started
    rss_after_world = peak_rss_mib()

    api = SimulatorApi(world, FixedClock(now), page_size_cap=100)
    client = AsyncSiroClient(
        "bench-token", "http://sim", transport=SimulatorTransport(api),
        pacer=RequestPacer(math.inf), retry=RetryPolicy(max_attempts=2, initial_backoff=0),
    )
    tracemalloc.start()
    with tempfile.TemporaryDirectory() as tmp, RecordingsStage() as stage:
        t0 = time.perf_counter()

        async def fetch() -> None:
            async with client:
                await stage_days(client, stage, days, concurrency=4, page_size=100)

        asyncio.run(fetch())
        t_fetch = time.perf_counter() - t0
        summary = stage.finalize(days)
        t_parse = time.perf_counter() - t0 - t_fetch
        with duckdb_connection(Path(tmp) / "bench.duckdb") as con:
            swap_partitions(con, stage, days)
            t_swap = time.perf_counter() - t0 - t_fetch - t_parse
            derived = {}
            for table in DERIVED_TABLES:
                t1 = time.perf_counter()
                rows = rebuild_partitions(con, table, days)
                derived[table.name] = (rows, time.perf_counter() - t1)
        _, python_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

    rows = summary.rows
    print(f"recordings: {rows} over {n_days} day(s) ({per_day}/day nominal); pages: {stage.pages}; "
          f"bytes: {stage.bytes / 2**20:.1f} MiB")
    print(f"simulator generation (not pipeline): {generate_s:.2f} s")
    print(f"fetch+stage (in-process simulator, includes its JSON encoding): {t_fetch:.2f} s "
          f"= {rows / t_fetch:,.0f} recordings/s")
    print(f"parse into typed columns (DuckDB JSON): {t_parse:.2f} s = {rows / max(t_parse, 1e-9):,.0f} recordings/s "
          f"({t_parse / rows * 1e6:.0f} s per million)")
    print(f"atomic swap into warehouse: {t_swap:.2f} s")
    for name, (n, seconds) in derived.items():
        print(f"rebuild siro.{name}: {n} rows in {seconds:.2f} s")
    print(f"python heap peak during ingest (tracemalloc): {python_peak / 2**20:.1f} MiB")
    print(f"process peak RSS: {peak_rss_mib():.0f} MiB (after generating the world: {rss_after_world:.0f} MiB)")


if __name__ == "__main__":
    main()
