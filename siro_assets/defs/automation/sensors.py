"""`recordings_updated_sensor`: late CRM links, summaries, deletions and purges flow in by themselves.

Each tick lists the recordings whose `updatedAt` moved since the cursor (one cheap
request when idle), maps each to the day partition of its `createdAt`, and requests
`siro_recordings_job` (the raw table and everything downstream) for exactly those days.
The bookkeeping lives in `change_tracking.py`; operator notes in `docs/SENSOR.md`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from .change_tracking import ChangePlan, ChangeRange, SensorCursor, plan_changes, query_start
from .jobs import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG, recordings_job
from ..partitions import daily_partitions, partition_date, partition_key
from ..resources import MissingTokenError, SiroApiResource
from ...api_client import Page, RecordingsQuery, SiroError
from ...api_client.timestamps import format_ts, parse_ts

__all__ = ["SensorSettings", "recordings_updated_sensor", "run_requests_for", "SENSOR_NAME"]

SENSOR_NAME = "recordings_updated_sensor"

DEFAULT_INTERVAL_SECONDS = 60
DEFAULT_LOOKBACK_SECONDS = 300
DEFAULT_MAX_RUNS_PER_TICK = 10
# The API's maximum page size is undocumented and servers cap silently, so ask for a
# lot: an idle tick is one request, a busy one as few as the server allows.
DEFAULT_PAGE_SIZE = 1000

CHANGES_TAG = "siro/changes"
NEWEST_UPDATED_AT_TAG = "siro/newest_updated_at"
CHANGED_DAYS_TAG = "siro/changed_days"


def _env_int(name: str, default: int, minimum: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


@dataclass(frozen=True)
class SensorSettings:
    """Tick-time settings, read from the environment on every tick (no redeploy needed).

    - `SIRO_SENSOR_LOOKBACK_SECONDS` (default 300): overlap re-listed below the watermark
      for changes that become visible late.
    - `SIRO_SENSOR_MAX_RUNS_PER_TICK` (default 10): changed days are merged into at most
      this many partition ranges, each one run.
    - `SIRO_SENSOR_PAGE_SIZE` (default 1000): page size asked for (the server may cap it).

    `SIRO_SENSOR_INTERVAL_SECONDS` (default 60) is read once, when the code loads,
    because Dagster fixes a sensor's interval at definition time.
    """

    lookback: timedelta
    max_runs: int
    page_size: int

    @classmethod
    def from_env(cls) -> SensorSettings:
        """Read the settings; a malformed value fails the tick with the variable's name."""
        return cls(
            lookback=timedelta(seconds=_env_int("SIRO_SENSOR_LOOKBACK_SECONDS", DEFAULT_LOOKBACK_SECONDS, 0)),
            max_runs=_env_int("SIRO_SENSOR_MAX_RUNS_PER_TICK", DEFAULT_MAX_RUNS_PER_TICK, 1),
            page_size=_env_int("SIRO_SENSOR_PAGE_SIZE", DEFAULT_PAGE_SIZE, 1),
        )


def _changes(pages: Iterable[Page], log) -> Iterator[tuple[str, datetime, datetime]]:
    for page in pages:
        for record in page.records:
            try:
                yield record["id"], parse_ts(record["createdAt"]), parse_ts(record["updatedAt"])
            except (KeyError, TypeError, ValueError) as exc:
                # One bad row must not stall every later change behind it.
                log.warning(f"Ignoring a listed recording without a usable id/createdAt/updatedAt ({exc!r})")


def run_requests_for(ranges: Iterable[ChangeRange]) -> list[RunRequest]:
    """One run request per range of days: a single day by `partition_key`, several days
    as one run over a partition range (the `dagster/asset_partition_range_*` tags; every
    asset in `siro_recordings_job` processes a whole range in one run)."""
    requests = []
    for r in ranges:
        tags = {
            CHANGES_TAG: str(r.count),
            NEWEST_UPDATED_AT_TAG: format_ts(r.newest_updated_at),
            CHANGED_DAYS_TAG: str(len(r.changed_days)),
        }
        if r.first_day == r.last_day:
            requests.append(RunRequest(run_key=r.run_key, partition_key=partition_key(r.first_day), tags=tags))
        else:
            tags[PARTITION_RANGE_START_TAG] = partition_key(r.first_day)
            tags[PARTITION_RANGE_END_TAG] = partition_key(r.last_day)
            requests.append(RunRequest(run_key=r.run_key, tags=tags))
    return requests


def _partition_bounds() -> tuple[date, date | None]:
    # The last partition follows Dagster's wall clock (not the API's), because that is
    # the clock Dagster validates the requested partition keys against.
    last = daily_partitions.get_last_partition_key()
    return daily_partitions.start.date(), partition_date(last) if last else None


def _log_plan(context: SensorEvaluationContext, plan: ChangePlan, ranges: list[ChangeRange], requests: int) -> None:
    context.log.info(
        f"Listed {plan.listed} recording(s) with updatedAt >= {format_ts(plan.query_start)} "
        f"({requests} request(s)): {plan.change_count} new change(s), "
        f"{plan.duplicates} duplicate(s) dropped, {len(plan.partitions)} partition(s) requested "
        f"in {len(ranges)} run(s)."
    )
    for day, count in plan.skipped.items():
        context.log.warning(
            f"Skipping {count} change(s) to recordings created on {day}: outside the partitions "
            f"definition (SIRO_PARTITIONS_START={daily_partitions.start.date()}, last partition today)."
        )


@sensor(
    name=SENSOR_NAME,
    job=recordings_job,
    minimum_interval_seconds=_env_int("SIRO_SENSOR_INTERVAL_SECONDS", DEFAULT_INTERVAL_SECONDS, 1),
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Lists recordings whose updatedAt moved since the cursor and rematerializes the "
        "createdAt days they belong to (raw table and everything downstream). See docs/SENSOR.md."
    ),
)
def recordings_updated_sensor(context: SensorEvaluationContext, siro_api: SiroApiResource):
    """Request runs for the day partitions whose recordings changed since the last tick.

    An API error skips the tick and keeps the cursor, so the next tick catches up.
    """
    settings = SensorSettings.from_env()
    cursor = SensorCursor.from_json(context.cursor)
    now = siro_api.now()
    since = query_start(cursor, now, settings.lookback)
    # No enrichment flags: the listing only needs ids and timestamps, the runs fetch the rest.
    query = RecordingsQuery(updated_gte=since, page_size=settings.page_size)
    kept = format_ts(cursor.watermark) if cursor.watermark else f"none yet (listing from {format_ts(since)})"
    try:
        with siro_api.client() as client:
            changed = list(_changes(client.iter_recording_pages(query), context.log))
            requests = client.stats.requests
    except (SiroError, MissingTokenError) as err:
        # The client keeps the token out of every error it raises, so `err` is safe to show.
        return SkipReason(f"Siro API error, cursor kept at watermark {kept}: {err}")

    first_day, last_day = _partition_bounds()
    plan, new_cursor = plan_changes(
        cursor, changed, now, settings.lookback, first_day=first_day, last_day=last_day
    )
    ranges = plan.ranges(settings.max_runs)
    _log_plan(context, plan, ranges, requests)
    if not ranges:
        return SensorResult(
            skip_reason=SkipReason(
                f"No new changes since {format_ts(since)} ({plan.listed} listed, "
                f"{plan.duplicates} already requested)."
            ),
            cursor=new_cursor.to_json(),
        )
    return SensorResult(run_requests=run_requests_for(ranges), cursor=new_cursor.to_json())
