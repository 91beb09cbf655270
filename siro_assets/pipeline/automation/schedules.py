"""The nightly schedule: yesterday's partition, complete, shortly after midnight UTC."""

from __future__ import annotations

from datetime import timedelta

from dagster import DefaultScheduleStatus, RunRequest, ScheduleEvaluationContext, SkipReason, schedule

from .jobs import recordings_job
from ..partitions import daily_partitions, partition_key

NIGHTLY_MINUTE = 15


# Not `build_schedule_from_partitioned_job`: that requests the *last* partition, and
# with `end_offset=1` (today's partial day is a partition) the last one is today.
# This schedule is built from the same job and partitions definition, one day back.
@schedule(
    job=recordings_job,
    cron_schedule=daily_partitions.get_cron_schedule(minute_of_hour=NIGHTLY_MINUTE),
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Shortly after midnight UTC, pull yesterday's recordings (now complete) "
    "and rebuild every table derived from them.",
)
def nightly_recordings_schedule(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
    """Request yesterday's partition; the run key makes a repeated tick a no-op."""
    yesterday = context.scheduled_execution_time.date() - timedelta(days=1)
    if yesterday < daily_partitions.start.date():
        return SkipReason(f"{yesterday} is before the first partition ({daily_partitions.start.date()})")
    key = partition_key(yesterday)
    return RunRequest(partition_key=key, run_key=key)
