"""Streaming API pages for a set of days into a staging database, as fast as the budget allows.

The glue between the API client (which knows HTTP) and the warehouse (which knows
DuckDB); it knows neither Dagster nor SQL.

- Windows: one per run of consecutive days to begin with; long ones are split while
  they are walked (`windows.py`), so the rate budget is spent on several cursors at
  once without paying a part-filled page for every fixed slice of every day.
- Concurrency: Little's law over the measured latency and the pacer's rate
  (`concurrency.py`); workers are added as measurements come in.
- Pages are parsed once, by the stage (DuckDB), never by Python: the client reads only
  the cursor, and each walker hands its page body to one bounded queue and waits for
  the stage's verdict (record count, `createdAt` order) before it asks for the next
  page. A single consumer parses what the queue holds in a worker thread, in batches,
  so parsing never stalls the event loop; memory holds at most the queue's pages plus
  two bodies per worker (the one being staged and the one read ahead). A body the stage refuses is fetched again (the client's
  retry policy), so a malformed page costs a retry, not the run.
- Page size: ask for `page_size` (1,000 by default) and use what the server serves; a
  server that rejects the size gets asked for less.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import date

from .concurrency import LatencyMeter, littles_law_concurrency
from ...changes.listing_windows import WindowPlanner, WindowWalk, from_ms
from ...api_client import AsyncSiroClient, SiroBadRequestError, created_window
from ...warehouse.staging import MalformedPageError, PageParse, RecordingsStage

DEFAULT_PAGE_SIZE = 1000
# Sizes to fall back to, in order, if the server refuses the one asked for.
_SMALLER_PAGE_SIZES = (500, 250, 100)
# Pages waiting for the stage. Small: the stage parses faster than the API serves, and
# each page of 1,000 enriched recordings is ~4 MB.
QUEUE_PAGES = 8
# Pages handed to the stage per hop to its thread: as many as are waiting, up to a
# bound in pages and in bytes (DuckDB's JSON parse holds several times the text, and
# the stage's memory is capped).
BATCH_PAGES = 8
BATCH_BYTES = 4 * 2**20

ENRICHMENT = dict(
    show_crm_links=True,
    show_summary=True,
    show_entity_extractions=True,
    show_evaluation_score=True,
    show_followups=True,
)


@dataclass
class FetchReport:
    """What a fetch did, for run metadata and benchmarks."""

    pages: int = 0
    records: int = 0
    bytes: int = 0
    windows: int = 0
    splits: int = 0
    asked_page_size: int = DEFAULT_PAGE_SIZE
    served_page_size: int = 0
    max_concurrency: int = 0
    latency_seconds: float = 0.0
    stage_seconds: float = 0.0


async def stage_days(
    client: AsyncSiroClient,
    stage: RecordingsStage,
    days: Sequence[date],
    *,
    concurrency: int = 16,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> FetchReport:
    """List every recording created on `days` (all enrichment blocks on) into `stage`.

    `concurrency` is an upper bound; the number of windows walked at once follows from
    the measured latency and the client's pacer. Fails as a whole if any request or
    page fails: a partial day must never reach the warehouse.
    """
    report = FetchReport(asked_page_size=page_size)
    planner = WindowPlanner(days)
    queue: asyncio.Queue[tuple[bytes, asyncio.Future] | None] = asyncio.Queue(maxsize=QUEUE_PAGES)
    progress = asyncio.Event()
    latency = LatencyMeter()
    rate = getattr(client.pacer, "requests_per_minute", float("inf"))
    asked = [page_size]
    alive = 0

    async def accept(body: bytes) -> PageParse:
        verdict = asyncio.get_running_loop().create_future()
        await queue.put((body, verdict))
        parsed = await verdict
        if isinstance(parsed, MalformedPageError):
            raise parsed  # the client fetches the page again
        return parsed

    async def walk(window: WindowWalk) -> None:
        while True:
            query = created_window(
                from_ms(window.start), from_ms(window.end), page_size=asked[0], **ENRICHMENT
            )
            try:
                # Read ahead while nothing can make this walk stop early and the stage
                # keeps up: its parse of a page then overlaps the request for the next
                # one, and bodies waiting for the stage stay bounded by the queue.
                pages = client.aiter_recording_bodies(
                    query, accept, read_ahead=lambda: window.stop_at is None and not queue.full()
                )
                async with aclosing(pages):
                    async for page in pages:
                        latency.observe(page.latency_seconds)
                        parsed: PageParse = page.accepted
                        if page.cursor is not None:
                            planner.note_full_page(parsed.records)
                        window.observe(parsed.created_ms)
                        report.pages += 1
                        report.records += parsed.records
                        report.bytes += len(page.body)
                        del page
                        progress.set()
                        grow()
                        if window.should_stop():
                            break
                return
            except SiroBadRequestError as exc:
                smaller = [s for s in _SMALLER_PAGE_SIZES if s < asked[0]]
                if window.pages or not smaller or "pagesize" not in str(exc).lower():
                    raise
                asked[0] = smaller[0]

    async def worker() -> None:
        nonlocal alive
        try:
            while True:
                window = planner.next_window()
                if window is None:
                    if planner.exhausted():
                        break
                    progress.clear()
                    await progress.wait()
                    continue
                report.windows += 1
                try:
                    await walk(window)
                finally:
                    planner.finished(window)
                    progress.set()
        finally:
            alive -= 1
        if alive == 0:
            await queue.put(None)  # the last worker out tells the stage there is no more

    def grow() -> None:
        nonlocal alive
        target = littles_law_concurrency(rate, latency.seconds, max(1, concurrency))
        while alive < target and not planner.exhausted():
            alive += 1
            report.max_concurrency = max(report.max_concurrency, alive)
            group.create_task(worker())

    async def consume() -> None:
        carried: list[tuple[bytes, asyncio.Future] | None] = []
        while True:
            batch = carried or [await queue.get()]
            carried = []
            size = len(batch[0][0]) if batch[0] is not None else 0
            while batch[-1] is not None and len(batch) < BATCH_PAGES and not queue.empty():
                item = queue.get_nowait()
                if item is not None and size + len(item[0]) > BATCH_BYTES:
                    carried = [item]  # starts the next batch
                    break
                batch.append(item)
                size += len(item[0]) if item is not None else 0
            items = [item for item in batch if item is not None]
            if items:
                started = time.perf_counter()
                verdicts = await asyncio.to_thread(stage.add_pages, [body for body, _ in items])
                report.stage_seconds += time.perf_counter() - started
                for (_, verdict), parsed in zip(items, verdicts):
                    if not verdict.done():  # a walker cancelled while it waited
                        verdict.set_result(parsed)
            if len(items) < len(batch):
                return

    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(consume())
            # The first request measures the latency; the rest follow from it.
            alive = 1
            report.max_concurrency = 1
            group.create_task(worker())
    except BaseExceptionGroup as failures:
        # The first failure stops every worker; report it as itself (a SiroError with
        # its clear message), not wrapped in a group.
        raise failures.exceptions[0] from None
    report.splits = planner.splits
    report.served_page_size = planner.served_page_size
    report.asked_page_size = asked[0]
    report.latency_seconds = latency.seconds
    return report

