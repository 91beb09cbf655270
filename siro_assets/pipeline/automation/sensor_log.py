"""`log_tick`: what one tick of the `updatedAt` sensor listed, dropped and requested, for
the operator reading the tick's log (docs/SENSOR.md)."""

from __future__ import annotations

from datetime import date

from ...api_client.timestamps import format_ts
from ...changes.backlog_walk import Walk
from ...changes.change_tracking import ChangePlan, ChangeRange
from ...changes.pending_runs import PendingReview
from ...changes.sensor_cursor import TieWalk

def log_tick(
    log,
    walk: Walk,
    plan: ChangePlan,
    review: PendingReview,
    relied_on: dict[date, str],
    ranges: list[ChangeRange],
    requests: int,
    tie: TieWalk | None,
    first_day: date,
) -> None:
    """Log the tick on `log` (the sensor context's logger)."""
    drained = "backlog drained" if walk.reached_now else f"stopped early ({walk.stopped})"
    listing = (
        f"updatedAt >= {format_ts(plan.query_start)}" if tie is None
        else f"updatedAt = {format_ts(tie.at)} by createdAt (a crowded millisecond)"
    )
    log.info(
        f"Listed {plan.listed} recording(s) with {listing} in "
        f"{walk.chunks} chunk(s), {walk.pages} page(s), {requests} request(s), {drained}: "
        f"{plan.change_count} new change(s), {plan.duplicates} duplicate(s) dropped, "
        f"{len(ranges)} run(s) requested."
    )
    if walk.tie_at is not None:
        log.warning(
            f"More recordings share updatedAt {format_ts(walk.tie_at)} than one tick can list: "
            "the next ticks list that millisecond by createdAt, then go on."
        )
    if walk.abandoned_pages:
        log.info(f"{walk.abandoned_pages} page(s) of a chunk too large for the budget were dropped; "
                         f"next chunk width {walk.span}.")
    for day, count in plan.skipped.items():
        log.warning(
            f"Skipping {count} change(s) to recordings created on {day}: outside the partitions "
            f"definition (partitions_start {first_day}, last partition today)."
        )
    for day in sorted(review.due):
        request = review.due[day]
        log.warning(
            f"Requesting {day} again (attempt {request.attempt + 1}): no run of request "
            f"{request.key} succeeded."
        )
    if relied_on:
        log.info(f"No new run for {len(relied_on)} day(s) already covered by a queued run: "
                         + ", ".join(str(d) for d in sorted(relied_on)))
