"""Shared pieces of the benchmarks: the simulator as an HTTP server in its own process,
the parse-free fetch that is each benchmark's physical limit, peak RSS and the machine.

Not a test module; the benchmarks print figures and are never run by pytest.
"""

from __future__ import annotations

import asyncio
import math
import os
import platform
import re
import resource
import sys
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from siro_assets.api_client import RequestPacer  # noqa: E402
from siro_assets.api_client.query import created_window  # noqa: E402

TOKEN = "bench-token"
# Every enrichment flag, as the pipeline asks.
ENRICHED = dict(
    show_crm_links=True, show_summary=True, show_entity_extractions=True,
    show_evaluation_score=True, show_followups=True,
)
_CURSOR_AT_END = re.compile(rb'"cursor"\s*:\s*(null|"([^"]*)")\s*}\s*$')


def quick_mode() -> bool:
    """`--quick` on the command line: a scaled-down run that finishes in seconds."""
    return "--quick" in sys.argv[1:]


def weekdays(first: date, count: int) -> list[date]:
    """`count` consecutive weekdays from `first` (the simulator has fewer recordings at weekends)."""
    days, d = [], first
    while len(days) < count:
        if d.weekday() < 5:
            days.append(d)
        d += timedelta(days=1)
    return days


def peak_rss_mib() -> float:
    """This process's peak resident set size so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> str:
    """One line naming the machine and software the figures were measured on."""
    import duckdb

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, Python {platform.python_version()}, "
            f"DuckDB {duckdb.__version__}, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, "
            f"load average {load}")


def simulator_server(*, now: datetime, recordings_per_day: int, page_size_cap: int,
                     rate_limit: int | None = None, latency_ms: float = 0.0,
                     latency_jitter_ms: float = 0.0) -> AbstractContextManager[str]:
    """`python -m siro_assets.simulator` on a free 127.0.0.1 port in its own process
    (accepting `TOKEN`), as the e2e tests start it; yields its URL."""
    from tests.e2e.processes import simulator

    args = ["--recordings-per-day", str(recordings_per_day), "--page-size-cap", str(page_size_cap),
            "--latency-ms", str(latency_ms), "--latency-jitter-ms", str(latency_jitter_ms)]
    if rate_limit:
        args += ["--rate-limit", str(rate_limit)]
    return simulator(TOKEN, now, *args)


@dataclass
class FetchFigures:
    """What a fetch cost: pages, bytes, HTTP 429 answers and wall time."""

    pages: int = 0
    bytes: int = 0
    rate_limited: int = 0
    seconds: float = 0.0


async def _parse_free(base_url: str, days: Sequence[date], page_size: int, concurrency: int,
                      pacer: RequestPacer, token: str) -> FetchFigures:
    figures = FetchFigures()
    queue: asyncio.Queue = asyncio.Queue()
    for day in days:
        start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        queue.put_nowait(created_window(start, start + timedelta(days=1), page_size=page_size, **ENRICHED))

    async def worker(http: httpx.AsyncClient) -> None:
        while not queue.empty():
            base = queue.get_nowait().to_params()
            cursor = None
            while True:
                params = dict(base, **({"cursor": cursor} if cursor else {}))
                await pacer.acquire_async()
                response = await http.get("/v1/core/recordings", params=params)
                if response.status_code == 429:
                    figures.rate_limited += 1
                    await asyncio.sleep(1.0)
                    continue
                response.raise_for_status()
                body = response.content
                figures.pages += 1
                figures.bytes += len(body)
                # The cursor is the body's last member: a regex on the tail, no JSON parse.
                match = _CURSOR_AT_END.search(body[-2048:])
                cursor = match.group(2).decode() if match and match.group(2) else None
                if cursor is None:
                    break

    started = time.perf_counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {token}"},
                                 timeout=300, limits=limits) as http:
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
    figures.seconds = time.perf_counter() - started
    return figures


def warm_up(base_url: str, days: Sequence[date]) -> None:
    """One one-record page per day, so the simulator generates its days before anything
    is measured (generating a 200,000-recording day takes longer than a request timeout)."""
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {TOKEN}-warm-up"},
                      timeout=1800) as http:
        for day in days:
            start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
            query = created_window(start, start + timedelta(days=1), page_size=1)
            http.get("/v1/core/recordings", params=query.to_params()).raise_for_status()


def parse_free_fetch(base_url: str, days: Sequence[date], *, page_size: int, concurrency: int = 8,
                     requests_per_minute: float = math.inf, token: str = TOKEN + "-parse-free") -> FetchFigures:
    """Fetch every enriched page of `days` as bytes, following cursors, parsing nothing.

    The physical limit of a benchmark: what serving and moving the same pages costs
    with no work of ours on them. Its own token, so it has its own rate-limit budget.
    """
    pacer = RequestPacer(requests_per_minute)
    return asyncio.run(_parse_free(base_url, days, page_size, concurrency, pacer, token))
