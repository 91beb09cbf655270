"""`recordings_updated_sensor`: late CRM links, summaries, deletions and purges flow in by themselves.

Each tick lists the recordings whose `updatedAt` moved since the cursor (one cheap
request when idle; a backlog in `updatedAt` chunks within a time and page budget),
maps each to the day partition of its `createdAt`, and requests `siro_recordings_job`
(the raw table and everything downstream) for exactly those days. Days stay pending in
the cursor until a run covering them succeeds, and are requested again if their runs
failed. The bookkeeping lives in `change_tracking.py`, `backlog_walk.py` and
`pending_runs.py`; operator notes in `docs/SENSOR.md`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from .backlog_walk import DEFAULT_SPAN, TickBudget, Walk, walk_backlog
from .change_tracking import ChangePlan, ChangeRange, SensorCursor, build_ranges, plan_changes, query_start
from .sensor_cursor import TieWalk
from .jobs import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG, recordings_job
from .pending_runs import PendingReview, next_pending, review_pending
from .run_status import REQUEST_TAG, queued_days, request_states
from ..ingest.refresh import UPDATED_SINCE_TAG
from ..partitions import daily_partitions, day_start, partition_date, partition_key
from ..resources import MissingTokenError, SiroApiResource
from ...api_client import Page, RecordingsQuery, RetryPolicy, SiroClient, SiroError
from ...api_client.timestamps import MS, format_ts, parse_ts

__all__ = ["SensorSettings", "recordings_updated_sensor", "run_requests_for", "SENSOR_NAME"]

SENSOR_NAME = "recordings_updated_sensor"

DEFAULT_INTERVAL_SECONDS = 60
DEFAULT_LOOKBACK_SECONDS = 300
DEFAULT_MAX_RUNS_PER_TICK = 10
# The API's maximum page size is undocumented and servers cap silently, so ask for a
# lot: an idle tick is one request, a busy one as few as the server allows.
DEFAULT_PAGE_SIZE = 1000
# Dagster cancels an evaluation after 60 s. No page starts after the budget, and one
# page takes at most SENSOR_ATTEMPTS x SENSOR_REQUEST_TIMEOUT plus ~3 s of backoff, so
# a tick ends within about 30 + 18 = 48 s even when the API hangs.
DEFAULT_TICK_SECONDS = 30
DEFAULT_MAX_PAGES_PER_TICK = 300
SENSOR_ATTEMPTS = 3
SENSOR_REQUEST_TIMEOUT = 5.0
SENSOR_MAX_BACKOFF = 2.0

CHANGES_TAG = "siro/changes"
NEWEST_UPDATED_AT_TAG = "siro/newest_updated_at"
CHANGED_DAYS_TAG = "siro/changed_days"
RETRIED_DAYS_TAG = "siro/retried_days"

# Injectable for tests: the tick's time budget runs on `tick_clock` (monotonic seconds),
# the pending days' backoff on `wall_clock` (the clock Dagster's run records use).
tick_clock: Callable[[], float] = time.monotonic


def wall_clock() -> datetime:
    """Now, by the wall clock."""
    return datetime.now(timezone.utc)


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
    - `SIRO_SENSOR_TICK_SECONDS` (default 30, at most 40): no page is started after this
      many seconds of listing.
    - `SIRO_SENSOR_MAX_PAGES_PER_TICK` (default 300): most pages one tick lists.

    `SIRO_SENSOR_INTERVAL_SECONDS` (default 60) is read once, when the code loads,
    because Dagster fixes a sensor's interval at definition time.
    """

    lookback: timedelta
    max_runs: int
    page_size: int
    budget: TickBudget

    @classmethod
    def from_env(cls) -> SensorSettings:
        """Read the settings; a malformed value fails the tick with the variable's name."""
        seconds = _env_int("SIRO_SENSOR_TICK_SECONDS", DEFAULT_TICK_SECONDS, 1)
        if seconds > 40:
            raise ValueError(f"SIRO_SENSOR_TICK_SECONDS must be <= 40 (Dagster stops a tick at 60 s), got {seconds}")
        return cls(
            lookback=timedelta(seconds=_env_int("SIRO_SENSOR_LOOKBACK_SECONDS", DEFAULT_LOOKBACK_SECONDS, 0)),
            max_runs=_env_int("SIRO_SENSOR_MAX_RUNS_PER_TICK", DEFAULT_MAX_RUNS_PER_TICK, 1),
            page_size=_env_int("SIRO_SENSOR_PAGE_SIZE", DEFAULT_PAGE_SIZE, 1),
            budget=TickBudget(
                seconds=seconds, pages=_env_int("SIRO_SENSOR_MAX_PAGES_PER_TICK", DEFAULT_MAX_PAGES_PER_TICK, 1)
            ),
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
          settings: SensorSettings, log) -> Walk:
    """This tick's listing: the backlog from ``since``, or the crowded millisecond being
    walked by ``createdAt`` (from the first partition's midnight: older recordings are
    not partitions anyway)."""
    if cursor.tie is None:
        lister = _chunk_lister(client, settings.page_size, log)
        return walk_backlog(lister, since, now, cursor.span, settings.budget, tick_clock, errors=(SiroError,))
    tie = cursor.tie
    start = tie.created_from or day_start(daily_partitions.start.date())
    lister = _tie_lister(client, tie.at, settings.page_size, log)
    return walk_backlog(lister, start, tie.at + MS, tie.span, settings.budget, tick_clock, errors=(SiroError,),
                        key=_created_at)


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


def run_requests_for(ranges: Iterable[ChangeRange]) -> list[RunRequest]:
    """One run request per range of days: a single day by `partition_key`, several days
    as one run over a partition range (the `dagster/asset_partition_range_*` tags; every
    asset in `siro_recordings_job` processes a whole range in one run). The run key is
    also the `siro/request` tag, which the run's automatic retries inherit, so the
    sensor can tell later whether the request succeeded. A range of new changes only
    also carries `siro/updated_since`, so its run fetches just the changed recordings."""
    requests = []
    for r in ranges:
        tags = {
            REQUEST_TAG: r.run_key,
            CHANGES_TAG: str(r.count),
            CHANGED_DAYS_TAG: str(len(r.changed_days)),
        }
        if r.newest_updated_at is not None:
            tags[NEWEST_UPDATED_AT_TAG] = format_ts(r.newest_updated_at)
        if r.retried:
            tags[RETRIED_DAYS_TAG] = ",".join(partition_key(d) for d in r.retried)
        elif r.pairs:
            # Only changes: the run fetches what was updated since the oldest of them and
            # upserts it (defs/ingest/refresh.py). A day requested again after a failed
            # run has no such bound and is re-pulled whole.
            tags[UPDATED_SINCE_TAG] = format_ts(min(updated for _, updated in r.pairs))
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


def _log_tick(
    context: SensorEvaluationContext,
    walk: Walk,
    plan: ChangePlan,
    review: PendingReview,
    relied_on: dict[date, str],
    ranges: list[ChangeRange],
    requests: int,
    tie: TieWalk | None,
) -> None:
    drained = "backlog drained" if walk.reached_now else f"stopped early ({walk.stopped})"
    listing = (
        f"updatedAt >= {format_ts(plan.query_start)}" if tie is None
        else f"updatedAt = {format_ts(tie.at)} by createdAt (a crowded millisecond)"
    )
    context.log.info(
        f"Listed {plan.listed} recording(s) with {listing} in "
        f"{walk.chunks} chunk(s), {walk.pages} page(s), {requests} request(s), {drained}: "
        f"{plan.change_count} new change(s), {plan.duplicates} duplicate(s) dropped, "
        f"{len(ranges)} run(s) requested."
    )
    if walk.tie_at is not None:
        context.log.warning(
            f"More recordings share updatedAt {format_ts(walk.tie_at)} than one tick can list: "
            "the next ticks list that millisecond by createdAt, then go on."
        )
    if walk.abandoned_pages:
        context.log.info(f"{walk.abandoned_pages} page(s) of a chunk too large for the budget were dropped; "
                         f"next chunk width {walk.span}.")
    for day, count in plan.skipped.items():
        context.log.warning(
            f"Skipping {count} change(s) to recordings created on {day}: outside the partitions "
            f"definition (SIRO_PARTITIONS_START={daily_partitions.start.date()}, last partition today)."
        )
    for day in sorted(review.due):
        request = review.due[day]
        context.log.warning(
            f"Requesting {day} again (attempt {request.attempt + 1}): no run of request "
            f"{request.key} succeeded."
        )
    if relied_on:
        context.log.info(f"No new run for {len(relied_on)} day(s) already covered by a queued run: "
                         + ", ".join(str(d) for d in sorted(relied_on)))


@sensor(
    name=SENSOR_NAME,
    job=recordings_job,
    minimum_interval_seconds=_env_int("SIRO_SENSOR_INTERVAL_SECONDS", DEFAULT_INTERVAL_SECONDS, 1),
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Lists recordings whose updatedAt moved since the cursor and rematerializes the "
        "createdAt days they belong to (raw table and everything downstream), until a run "
        "for each day succeeds. See docs/SENSOR.md."
    ),
)
def recordings_updated_sensor(context: SensorEvaluationContext, siro_api: SiroApiResource):
    """Request runs for the day partitions whose recordings changed since the last tick,
    and again for requested days whose runs all failed.

    An API error ends the listing where the last complete chunk left it; the next tick
    goes on from there.
    """
    settings = SensorSettings.from_env()
    cursor = SensorCursor.from_json(context.cursor)
    now, wall = siro_api.now(), wall_clock()
    since = query_start(cursor, now, settings.lookback)
    kept = format_ts(cursor.watermark) if cursor.watermark else f"none yet (listing from {format_ts(since)})"
    try:
        client = siro_api.client(retry=sensor_retry_policy(siro_api), timeout=SENSOR_REQUEST_TIMEOUT)
    except MissingTokenError as err:
        return SkipReason(f"Siro API error, cursor kept at watermark {kept}: {err}")
    with client:
        walk = _walk(client, cursor, since, now, settings, context.log)
        requests = client.stats.requests

    first_day, last_day = _partition_bounds()
    plan, new_cursor = plan_changes(
        cursor, walk.rows, now, settings.lookback,
        first_day=first_day, last_day=last_day, listed_through=walk.listed_through if cursor.tie is None else None,
    )
    new_cursor = _with_walk_progress(cursor, new_cursor, walk)
    review = review_pending(
        cursor.pending, request_states(context.instance, {p.key for p in cursor.pending.values()}), wall
    )
    queued = queued_days(context.instance, recordings_job.name) if plan.partitions or review.due else {}
    relied_on = {d: queued[d] for d in [*plan.partitions, *review.due] if d in queued}
    ranges = build_ranges(
        {d: p for d, p in plan.partitions.items() if d not in queued},
        {d: p for d, p in review.due.items() if d not in queued},
        settings.max_runs,
    )
    requested = {d: r.run_key for r in ranges for d in r.requested_days}
    new_cursor = replace(new_cursor, pending=next_pending(review, requested, relied_on, cursor.pending, wall))
    _log_tick(context, walk, plan, review, relied_on, ranges, requests, cursor.tie)
    if ranges:
        return SensorResult(run_requests=run_requests_for(ranges), cursor=new_cursor.to_json())
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
