"""Sensor-driven refreshes: fetch only the recordings that changed, not whole days.

The sensor knows the oldest `updatedAt` among the changes it requests a run for and
puts it on the run as the `siro/updated_since` tag. Such a run lists
`updatedAt:gte=<since>` within the run's `createdAt` days, every enrichment flag on,
and upserts what it gets by id: its cost follows the changes (about changed / page
size + 1 requests), not the size of the days. Runs without the tag (schedules,
backfills, days the sensor requests again after a failed run) re-pull whole days,
which is where that exactness belongs.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta

from .fetch_days import DEFAULT_PAGE_SIZE, ENRICHMENT, FetchReport
from ..partitions import day_start
from ...api_client import AsyncSiroClient, created_window
from ...api_client.async_client import FETCH_EACH_CONCURRENCY, fetch_each
from ...api_client.timestamps import parse_ts
from ...warehouse.staging import RecordingsStage

UPDATED_SINCE_TAG = "siro/updated_since"


def updated_since(tags: Mapping[str, str]) -> datetime | None:
    """The `updatedAt` lower bound a sensor-driven run fetches from, if it is one."""
    value = tags.get(UPDATED_SINCE_TAG)
    return parse_ts(value) if value else None


async def stage_changed(
    client: AsyncSiroClient,
    stage: RecordingsStage,
    days: Sequence[date],
    since: datetime,
    *,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> FetchReport:
    """List the recordings created on `days` and updated at or after `since` into `stage`.

    One cursor walk (a refresh is small); each page is parsed once, by the stage, in a
    worker thread.
    """
    report = FetchReport(asked_page_size=page_size, windows=1, max_concurrency=1)
    query = created_window(
        day_start(min(days)),
        day_start(max(days) + timedelta(days=1)),
        updated_gte=since,
        page_size=page_size,
        **ENRICHMENT,
    )
    async def accept(body: bytes):
        # The stage's parse is the only one; a body it refuses is fetched again.
        return await asyncio.to_thread(stage.add_page, body)

    async for page in client.aiter_recording_bodies(query, accept):
        if page.cursor is not None:
            report.served_page_size = max(report.served_page_size, page.accepted.records)
        report.pages += 1
        report.records += page.accepted.records
        report.bytes += len(page.body)
    return report


# A webhook-driven run carries the notified recording ids (comma-separated).
RECORDING_IDS_TAG = "siro/recording_ids"


def recording_ids(tags: Mapping[str, str]) -> list[str]:
    """The recording ids a webhook-driven run fetches one by one, if it is one."""
    value = tags.get(RECORDING_IDS_TAG, "")
    return [i for i in value.split(",") if i]


async def stage_ids(client: AsyncSiroClient, stage: RecordingsStage, ids: Sequence[str]) -> FetchReport:
    """Fetch exactly `ids` (every enrichment flag on) into `stage`, as one list page.

    An id the API does not know yet (404) is left out: the webhook sensor's next run or
    the `updatedAt` sensor brings it once it exists.
    """
    fetched = await fetch_each(ids, lambda recording_id: client.get_recording_json(recording_id, **ENRICHMENT))
    records = [record for record in fetched if record is not None]
    report = FetchReport(asked_page_size=len(ids), windows=1, max_concurrency=min(len(ids), FETCH_EACH_CONCURRENCY))
    body = json.dumps({"data": records, "cursor": None})
    await asyncio.to_thread(stage.add_page, body)
    report.pages, report.records, report.bytes = 1, len(records), len(body)
    return report
