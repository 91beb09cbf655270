"""Benchmark 1: how much of the API's rate ceiling a backfill uses.

A 60-day backfill (about 90,000 enriched recordings) against the simulator served over
HTTP in its own process with 250 +- 50 ms latency, 1,000 requests/minute per token and
pages capped at 100, fetched by the pipeline's raw step with its default settings
(pacing, page size, concurrency). Prints list requests per minute as a share of the
limit, 429 answers, and the total time against `pages / limit`, the time the ceiling
itself imposes; then a parse-free fetch of the same pages under the same limit.

    python bench/rate_ceiling.py [--quick]     # --quick: 12 days, same latency and limit
"""

from __future__ import annotations

import asyncio
import math
import time
from datetime import date, datetime, timezone

from harness import machine, parse_free_fetch, quick_mode, simulator_server, warm_up, TOKEN

from siro_assets.pipeline.ingest.fetch_days import stage_days
from siro_assets.pipeline.resources import SiroApiResource
from siro_assets.warehouse.staging import RecordingsStage
from datetime import timedelta

LIMIT_PER_MINUTE = 1000
PAGE_CAP = 100


def main() -> None:
    n_days = 12 if quick_mode() else 60
    days = [date(2026, 1, 5) + timedelta(days=i) for i in range(n_days)]
    now = datetime(2026, 4, 1, tzinfo=timezone.utc)
    print(f"# rate ceiling: {n_days}-day backfill, 250 +- 50 ms latency, {LIMIT_PER_MINUTE} requests/min, "
          f"page cap {PAGE_CAP}\n# {machine()}")
    with simulator_server(now=now, recordings_per_day=1800, page_size_cap=PAGE_CAP,
                          rate_limit=LIMIT_PER_MINUTE, latency_ms=250, latency_jitter_ms=50) as url:
        # The simulator generates each day (in Python) the first time it is asked for it;
        # a real server does not. Generate them all first, so that neither the pipeline
        # nor the parse-free fetch below pays for it in the figures.
        warm_up(url, days)
        resource = SiroApiResource(token=TOKEN, base_url=url)
        client = resource.async_client()
        with RecordingsStage() as stage:
            started = time.perf_counter()

            async def fetch():
                async with client:
                    return await stage_days(client, stage, days, concurrency=resource.max_concurrent_windows,
                                     page_size=resource.page_size)

            report = asyncio.run(fetch())
            seconds = time.perf_counter() - started
            rows = stage.finalize(days).rows
        stats = client.stats
        list_requests = stats.requests
        per_minute = list_requests / seconds * 60
        ceiling_seconds = list_requests / LIMIT_PER_MINUTE * 60
        ideal_pages = math.ceil(rows / PAGE_CAP)
        print(f"recordings {rows:,}; list requests {list_requests:,} ({list_requests / ideal_pages:.3f} x "
              f"recordings / served page size); pages {stats.pages:,}; retries {stats.retries}; "
              f"429s {stats.rate_limited}")
        print(f"pipeline raw fetch: {seconds:.1f} s, {per_minute:,.0f} requests/min = "
              f"{per_minute / LIMIT_PER_MINUTE:.0%} of the limit; pages / limit = {ceiling_seconds:.1f} s "
              f"(time / ceiling = {seconds / ceiling_seconds:.2f})")
        print(f"windows {report.windows} (splits {report.splits}), up to {report.max_concurrency} in flight "
              f"(measured latency {report.latency_seconds * 1000:.0f} ms), page size asked {report.asked_page_size} / "
              f"served {report.served_page_size}, stage busy {report.stage_seconds:.1f} s")
        # The parse-free fetch paces itself at the limit too: it is the best any client can do.
        free = parse_free_fetch(url, days, page_size=PAGE_CAP, concurrency=16,
                                requests_per_minute=LIMIT_PER_MINUTE * 0.98)
        print(f"parse-free fetch of the same pages (paced at 98% of the limit): {free.pages:,} pages in "
              f"{free.seconds:.1f} s, {free.pages / free.seconds * 60:,.0f} requests/min, 429s {free.rate_limited}")


if __name__ == "__main__":
    main()
