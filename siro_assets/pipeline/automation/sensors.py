"""`recordings_updated_sensor`: late CRM links, summaries, deletions and purges flow in by themselves.

Each tick lists the recordings whose `updatedAt` moved since the cursor (one cheap
request when idle; a backlog in `updatedAt` chunks within a time and page budget),
maps each to the day partition of its `createdAt`, and requests `siro_recordings_job`
(the raw table and everything downstream) for exactly those days. Days stay pending in
the cursor until a run covering them succeeds, and are requested again if their runs
failed. A tick is four stages, each data in / data out but for what it reads from the
instance: `walk_stage` (list), `plan_stage` (new changes by day), `review_stage` (the
pending requests' runs) and `request_stage` (the ranges and the one new cursor). The
bookkeeping lives in `siro_assets/changes/`; the requests in `sensor_requests.py`, the
tick's log in `sensor_log.py`; operator notes in `docs/SENSOR.md`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from dagster import (
    DagsterInstance,
    DailyPartitionsDefinition,
    DefaultSensorStatus,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from ...changes.backlog_walk import DEFAULT_SPAN, TickBudget, Walk, walk_backlog
from ...changes.change_tracking import ChangePlan, ChangeRange, SensorCursor, build_ranges, plan_changes, query_start
from ...changes.sensor_cursor import TieWalk
from ...changes.tick_clock import SYSTEM_CLOCK, TickClock
from ...changes.pending_runs import PendingReview, covers, next_pending, owed_since, review_pending
from .run_status import queued_days, request_states
from .sensor_log import log_tick
from .sensor_requests import run_requests_for
from ..partitions import day_start, partition_date
from ..resources import MissingTokenError, SiroApiResource
from ..settings import PipelineSettings, SensorOptions
from ...api_client import Page, RecordingsQuery, RetryPolicy, SiroClient, SiroError
from ...api_client.timestamps import MS, format_ts, parse_ts

__all__ = ["SensorSettings", "build_updated_sensor", "recordings_updated_sensor", "run_requests_for", "SENSOR_NAME"]

SENSOR_NAME = "recordings_updated_sensor"

DEFAULT_LOOKBACK_SECONDS = SensorOptions().lookback_seconds
# One page takes at most SENSOR_ATTEMPTS x SENSOR_REQUEST_TIMEOUT plus ~3 s of backoff,
# so with no page started after `tick_seconds` (default 30) a tick ends within about
# 30 + 18 = 48 s even when the API hangs, inside Dagster's 60 s.
SENSOR_ATTEMPTS = 3
SENSOR_REQUEST_TIMEOUT = 5.0
SENSOR_MAX_BACKOFF = 2.0

@dataclass(frozen=True)
class SensorSettings:
    """Tick-time settings, from the component's `sensor:` attributes (`SensorOptions`):
    `lookback_seconds` (overlap re-listed below the watermark for changes that become
    visible late), `max_runs_per_tick` (changed days are merged into at most this many
    partition ranges, each one run), `page_size` (asked for; the server may cap it),
    `tick_seconds` (no page is started after this many seconds of listing; at most 40)
    and `max_pages_per_tick`; `clock` is the tick's `TickClock` (the settings' `clock`)."""

    lookback: timedelta
    max_runs: int
    page_size: int
    budget: TickBudget
    clock: TickClock = SYSTEM_CLOCK

    @classmethod
    def from_options(cls, options: SensorOptions, page_size: int, clock: TickClock = SYSTEM_CLOCK) -> SensorSettings:
        """The tick settings of the component's `sensor:` attributes (validated there)."""
        return cls(
            lookback=timedelta(seconds=options.lookback_seconds),
            max_runs=options.max_runs_per_tick,
            page_size=page_size,
            budget=TickBudget(seconds=options.tick_seconds, pages=options.max_pages_per_tick),
            clock=clock,
        )


def sensor_retry_policy(siro_api: SiroApiResource) -> RetryPolicy:
    """The sensor's own short retry budget: a few seconds, not the run's minute.

    A tick that gives up early loses nothing (the cursor stays where the last complete
    chunk left it) and the next tick is a minute away; a tick that waits a minute is
    cancelled by Dagster. Never more patient than the resource itself.
    """
    return RetryPolicy(
        max_attempts=min(SENSOR_ATTEMPTS, siro_api.max_attempts),
        initial_backoff=min(0.5, siro_api.initial_backoff_seconds),
        max_backoff=SENSOR_MAX_BACKOFF,
    )


def _changes(pages: Iterable[Page], log) -> Iterator[tuple[str, datetime, datetime]]:
    for page in pages:
        for record in page.records:
            try:
                yield record["id"], parse_ts(record["createdAt"]), parse_ts(record["updatedAt"])
            except (KeyError, TypeError, ValueError) as exc:
                # One bad row must not stall every later change behind it.
                log.warning(f"Ignoring a listed recording without a usable id/createdAt/updatedAt ({exc!r})")


def _chunk_lister(client: SiroClient, page_size: int, log):
    """``list_pages(lo, hi)`` for the walk: ids and timestamps only, every flag off."""

    def list_pages(lo: datetime, hi: datetime | None):
        query = RecordingsQuery(updated_gte=lo, updated_lt=hi, page_size=page_size)
        for page in client.iter_recording_pages(query):
            yield list(_changes([page], log)), page.cursor is not None

    return list_pages


def _tie_lister(client: SiroClient, at: datetime, page_size: int, log):
    """``list_pages(lo, hi)`` over ``createdAt`` for the recordings updated exactly at ``at``."""

    def list_pages(lo: datetime, hi: datetime | None):
        query = RecordingsQuery(
            updated_gte=at, updated_lt=at + MS, created_gt=lo - MS, created_lt=hi, page_size=page_size
        )
        for page in client.iter_recording_pages(query):
            yield list(_changes([page], log)), page.cursor is not None

    return list_pages


def _walk(client: SiroClient, cursor: SensorCursor, since: datetime, now: datetime,
          settings: SensorSettings, first_day: date, log) -> Walk:
    """This tick's listing: the backlog from ``since``, or the crowded millisecond being
    walked by ``createdAt`` (from the first partition's midnight: older recordings are
    not partitions anyway)."""
    if cursor.tie is None:
        lister = _chunk_lister(client, settings.page_size, log)
        return walk_backlog(lister, since, now, cursor.span, settings.budget, settings.clock.monotonic,
                            errors=(SiroError,))
    tie = cursor.tie
    start = tie.created_from or day_start(first_day)
    lister = _tie_lister(client, tie.at, settings.page_size, log)
    return walk_backlog(lister, start, tie.at + MS, tie.span, settings.budget, settings.clock.monotonic,
                        errors=(SiroError,), key=_created_at)


def _created_at(row: tuple[str, datetime, datetime]) -> datetime:
    return row[1]


def _with_walk_progress(cursor: SensorCursor, planned: SensorCursor, walk: Walk) -> SensorCursor:
    """Fold the walk's chunk width and any crowded millisecond into the planned cursor.

    While a millisecond is walked by ``createdAt`` its pairs are kept out of ``seen``
    (tens of thousands of ids would bloat the cursor); instead, once it is done, the
    listing floor ``since`` moves just past it, so no later listing returns them.
    """
    if cursor.tie is None:
        span = walk.span if walk.span != DEFAULT_SPAN else None
        return replace(planned, span=span, tie=TieWalk(walk.tie_at) if walk.tie_at is not None else None)
    at = cursor.tie.at
    seen = frozenset(p for p in planned.seen if p[1] != at)
    if not walk.reached_now:
        tie = TieWalk(at, walk.listed_through or cursor.tie.created_from, walk.span)
        return replace(planned, seen=seen, tie=tie)
    past = at + MS
    watermark = max(planned.watermark, past) if planned.watermark is not None else past
    since = max(planned.since, past) if planned.since is not None else past
    return replace(planned, seen=seen, tie=None, watermark=watermark, since=since)


def _partition_bounds(partitions_def: DailyPartitionsDefinition) -> tuple[date, date | None]:
    # The last partition follows Dagster's wall clock (not the API's), because that is
    # the clock Dagster validates the requested partition keys against.
    last = partitions_def.get_last_partition_key()
    return partitions_def.start.date(), partition_date(last) if last else None


def build_updated_sensor(settings: PipelineSettings, job: Any) -> SensorDefinition:
    """One instance's `updatedAt` sensor, requesting `job` on the instance's partitions."""
    api_key = settings.api_resource_key
    tick_settings = SensorSettings.from_options(settings.sensor, settings.page_size, settings.clock)
    partitions_def = settings.partitions_def

    @sensor(
        name=settings.scoped(SENSOR_NAME),
        job=job,
        minimum_interval_seconds=settings.sensor.interval_seconds,
        default_status=DefaultSensorStatus.RUNNING if settings.sensor.enabled else DefaultSensorStatus.STOPPED,
        description=(
            "Lists recordings whose updatedAt moved since the cursor and rematerializes the "
            "createdAt days they belong to (raw table and everything downstream), until a run "
            "for each day succeeds. See docs/SENSOR.md."
        ),
        required_resource_keys={api_key},
    )
    def recordings_updated_sensor(context: SensorEvaluationContext):
        """Request runs for the day partitions whose recordings changed since the last tick,
        and again for requested days whose runs all failed.

        An API error ends the listing where the last complete chunk left it; the next tick
        goes on from there.
        """
        return evaluate_tick(
            context, getattr(context.resources, api_key), tick_settings, partitions_def, job.name
        )

    return recordings_updated_sensor


@dataclass(frozen=True)
class Review:
    """The review stage's verdict: the pending days' states, the oldest change each day
    owes, and the days left to a queued run that already covers them (day -> its key)."""

    pending: PendingReview
    owed: dict[date, datetime | None]
    relied_on: dict[date, str]


def walk_stage(client: SiroClient, cursor: SensorCursor, since: datetime, now: datetime,
               settings: SensorSettings, first_day: date, log) -> tuple[Walk, int]:
    """List this tick's backlog (or crowded millisecond); the walk and the requests it took."""
    with client:
        walk = _walk(client, cursor, since, now, settings, first_day, log)
        return walk, client.stats.requests


def plan_stage(cursor: SensorCursor, walk: Walk, now: datetime, settings: SensorSettings,
               bounds: tuple[date, date | None]) -> tuple[ChangePlan, SensorCursor]:
    """The walk's new changes by day, and the cursor past them (pending days not yet updated)."""
    plan, planned = plan_changes(
        cursor, walk.rows, now, settings.lookback, first_day=bounds[0], last_day=bounds[1],
        listed_through=walk.listed_through if cursor.tie is None else None,
    )
    return plan, _with_walk_progress(cursor, planned, walk)


def review_stage(instance: DagsterInstance, job_name: str, cursor: SensorCursor, plan: ChangePlan,
                 wall: datetime) -> Review:
    """Read the runs of the pending requests and the queued runs back from `instance`."""
    review = review_pending(cursor.pending, request_states(instance, {p.key for p in cursor.pending.values()}), wall)
    # The oldest change each day owes: a run that replaces a day's request, or a queued
    # run the day is left to, must list from there (docs/SENSOR.md, "What a pending day owes").
    owed = owed_since(review, {d: min(u for _, u in p.pairs) for d, p in plan.partitions.items()})
    queued = queued_days(instance, job_name) if plan.partitions or review.due else {}
    relied_on = {
        d: queued[d].key for d in [*plan.partitions, *review.due] if d in queued and covers(queued[d].since, owed[d])
    }
    return Review(review, owed, relied_on)


def request_stage(plan: ChangePlan, review: Review, cursor: SensorCursor, planned: SensorCursor,
                  max_runs: int, wall: datetime) -> tuple[list[ChangeRange], SensorCursor]:
    """The ranges to request this tick, and the one new cursor (with its pending days)."""
    ranges = build_ranges(
        {d: p for d, p in plan.partitions.items() if d not in review.relied_on},
        {d: p for d, p in review.pending.due.items() if d not in review.relied_on},
        max_runs,
    )
    requested = {d: r.run_key for r in ranges for d in r.requested_days}
    pending = next_pending(review.pending, requested, review.relied_on, cursor.pending, wall, review.owed)
    return ranges, replace(planned, pending=pending)


def evaluate_tick(
    context: SensorEvaluationContext,
    siro_api: SiroApiResource,
    settings: SensorSettings,
    partitions_def: DailyPartitionsDefinition,
    job_name: str,
):
    """One tick: walk the backlog, plan the changes, review pending days, request runs."""
    cursor = SensorCursor.from_json(context.cursor)
    now, wall = siro_api.now(), settings.clock.wall()
    since = query_start(cursor, now, settings.lookback)
    kept = format_ts(cursor.watermark) if cursor.watermark else f"none yet (listing from {format_ts(since)})"
    try:
        client = siro_api.client(retry=sensor_retry_policy(siro_api), timeout=SENSOR_REQUEST_TIMEOUT)
    except MissingTokenError as err:
        return SkipReason(f"Siro API error, cursor kept at watermark {kept}: {err}")
    walk, requests = walk_stage(client, cursor, since, now, settings, partitions_def.start.date(), context.log)
    bounds = _partition_bounds(partitions_def)
    plan, planned = plan_stage(cursor, walk, now, settings, bounds)
    review = review_stage(context.instance, job_name, cursor, plan, wall)
    ranges, new_cursor = request_stage(plan, review, cursor, planned, settings.max_runs, wall)
    log_tick(context.log, walk, plan, review.pending, review.relied_on, ranges, requests, cursor.tie, bounds[0])
    if ranges:
        return SensorResult(run_requests=run_requests_for(ranges, review.owed), cursor=new_cursor.to_json())
    # The client keeps the token out of every error it raises, so it is safe to show.
    if walk.error is not None and walk.chunks == 0:
        reason = f"Siro API error, cursor kept at watermark {kept}: {walk.error}"
    elif walk.error is not None:
        moved = format_ts(new_cursor.watermark) if new_cursor.watermark else "none yet"
        reason = f"Siro API error after {walk.chunks} complete chunk(s), watermark now {moved}: {walk.error}"
    else:
        reason = (
            f"No new changes since {format_ts(since)} ({plan.listed} listed, "
            f"{plan.duplicates} already requested, {len(new_cursor.pending)} day(s) pending)."
        )
    return SensorResult(skip_reason=SkipReason(reason), cursor=new_cursor.to_json())
