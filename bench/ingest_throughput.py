"""Benchmark: large days through the raw-ingest path, and the derived rebuilds after it.

The simulator runs as an HTTP server in its own process, so the peak memory printed is
the pipeline's own (client, stage, DuckDB), not the simulated world's. Prints throughput
and peak memory so "memory stays bounded however large a day is" is a measured figure.
Not run by pytest (machines here are noisy).

    .venv/bin/python bench/ingest_throughput.py [recordings_per_day] [days]
"""

from __future__ import annotations

import asyncio
import math
import resource
import socket
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from siro_assets.defs.ingest.fetch_days import stage_days  # noqa: E402
from siro_assets.api_client import AsyncSiroClient, RequestPacer, RetryPolicy  # noqa: E402
from siro_assets.api_client.timestamps import format_ts  # noqa: E402
from siro_assets.transforms import DERIVED_TABLES, rebuild_partitions  # noqa: E402
from siro_assets.warehouse.connection import duckdb_connection  # noqa: E402
from siro_assets.warehouse.staging import RecordingsStage, swap_partitions  # noqa: E402


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    per_day = int(sys.argv[1]) if len(sys.argv) > 1 else 5_000
    n_days = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    first = date(2026, 3, 2)  # a Monday: the simulator has fewer recordings at weekends
    days = [first + timedelta(days=i) for i in range(n_days)]
    now = datetime(2026, 3, 20, tzinfo=timezone.utc)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "siro_assets.simulator", "--port", str(port), "--now", format_ts(now),
         "--recordings-per-day", str(per_day), "--page-size-cap", "500"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        while "listening" not in server.stdout.readline():
            if server.poll() is not None:
                raise SystemExit("simulator failed to start")
        run(f"http://127.0.0.1:{port}", days, per_day)
    finally:
        server.terminate()
        server.wait(timeout=10)


def run(base_url: str, days: list[date], per_day: int) -> None:
    n_days = len(days)
    client = AsyncSiroClient(
        "bench-token", base_url, pacer=RequestPacer(math.inf),
        retry=RetryPolicy(max_attempts=3, initial_backoff=0.1), timeout=120,
    )
    rss_before = peak_rss_mib()
    with tempfile.TemporaryDirectory() as tmp, RecordingsStage() as stage:
        t0 = time.perf_counter()

        async def fetch() -> None:
            async with client:
                await stage_days(client, stage, days, concurrency=4, page_size=500)

        asyncio.run(fetch())
        t_fetch = time.perf_counter() - t0
        rss_fetch = peak_rss_mib()
        summary = stage.finalize(days)
        t_parse = time.perf_counter() - t0 - t_fetch
        rss_parse = peak_rss_mib()
        with duckdb_connection(Path(tmp) / "bench.duckdb") as con:
            swap_partitions(con, stage, days)
            t_swap = time.perf_counter() - t0 - t_fetch - t_parse
            rss_swap = peak_rss_mib()
            derived = {}
            for table in DERIVED_TABLES:
                t1 = time.perf_counter()
                rows = rebuild_partitions(con, table, days)
                derived[table.name] = (rows, time.perf_counter() - t1)

    rows = summary.rows
    print(f"recordings: {rows} over {n_days} day(s) ({per_day}/day nominal); pages: {stage.pages}; "
          f"bytes: {stage.bytes / 2**20:.1f} MiB")
    print(f"fetch over HTTP + parse each page into typed columns (includes the simulator "
          f"generating pages): {t_fetch:.2f} s = {rows / t_fetch:,.0f} recordings/s")
    print(f"finalize (validate, dedupe, in-window): {t_parse:.2f} s")
    print(f"atomic swap into warehouse: {t_swap:.2f} s")
    for name, (n, seconds) in derived.items():
        print(f"rebuild siro.{name}: {n} rows in {seconds:.2f} s")
    print(f"pipeline process peak RSS: {peak_rss_mib():.0f} MiB (at start {rss_before:.0f}, after fetch "
          f"{rss_fetch:.0f}, after parse {rss_parse:.0f}, after swap {rss_swap:.0f})")


if __name__ == "__main__":
    main()
