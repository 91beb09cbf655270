"""Streaming API pages for a set of days into a staging database, concurrently.

The glue between the API client (which knows HTTP) and the warehouse (which knows
DuckDB); it knows neither Dagster nor SQL. Each day is cut into sub-windows so that a
backfill, or one very large day, spends the rate budget on several cursors at once
instead of walking a single one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from ..partitions import day_start
from ...api_client import AsyncSiroClient, created_window
from ...warehouse.staging import RecordingsStage


@dataclass(frozen=True)
class Window:
    """A half-open `[start, end)` slice of one partition day."""

    day: date
    start: datetime
    end: datetime


def day_windows(days: Sequence[date], hours_per_window: int = 6) -> list[Window]:
    """Tile each day exactly with `[start, end)` windows of `hours_per_window` hours."""
    if not 1 <= hours_per_window <= 24 or 24 % hours_per_window:
        raise ValueError("hours_per_window must divide 24")
    step = timedelta(hours=hours_per_window)
    windows = []
    for day in days:
        start = day_start(day)
        for n in range(24 // hours_per_window):
            windows.append(Window(day, start + n * step, start + (n + 1) * step))
    return windows


async def stage_days(
    client: AsyncSiroClient,
    stage: RecordingsStage,
    days: Sequence[date],
    *,
    concurrency: int = 4,
    page_size: int = 100,
    hours_per_window: int = 6,
) -> None:
    """List every recording created on `days` (all enrichment blocks on) into `stage`.

    Fails as a whole if any window fails: a partial day must never reach the warehouse.
    """
    semaphore = asyncio.Semaphore(max(1, concurrency))

    async def fetch(window: Window) -> None:
        query = created_window(
            window.start,
            window.end,
            show_crm_links=True,
            show_summary=True,
            show_entity_extractions=True,
            show_evaluation_score=True,
            show_followups=True,
            page_size=page_size,
        )
        async with semaphore:
            async for page in client.aiter_recording_pages(query):
                # Pages are written as they arrive so memory holds one page per window.
                stage.add_page(page.body, window_start=window.day)

    tasks = [asyncio.create_task(fetch(w)) for w in day_windows(days, hours_per_window)]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
