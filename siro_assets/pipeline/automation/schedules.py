"""The nightly schedule: yesterday's partition, complete, shortly after midnight UTC."""

from __future__ import annotations

from typing import Any

from datetime import timedelta

from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from ..partitions import partition_key
from ..settings import PipelineSettings


# Not `build_schedule_from_partitioned_job`: that requests the *last* partition, and
# with `end_offset=1` (today's partial day is a partition) the last one is today.
# This schedule is built from the same job and partitions definition, one day back.
def build_nightly_schedule(settings: PipelineSettings, job: Any) -> ScheduleDefinition:
    """One instance's nightly schedule (`schedule.cron`, default 00:15 UTC) running `job`."""
    first_day = settings.partitions_def.start.date()

    @schedule(
        name=settings.scoped("nightly_recordings_schedule"),
        job=job,
        cron_schedule=settings.schedule.cron,
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.RUNNING if settings.schedule.enabled else DefaultScheduleStatus.STOPPED,
        description="Shortly after midnight UTC, pull yesterday's recordings (now complete) "
        "and rebuild every table derived from them.",
    )
    def nightly_recordings_schedule(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
        """Request yesterday's partition; the run key makes a repeated tick a no-op."""
        yesterday = context.scheduled_execution_time.date() - timedelta(days=1)
        if yesterday < first_day:
            return SkipReason(f"{yesterday} is before the first partition ({first_day})")
        key = partition_key(yesterday)
        return RunRequest(partition_key=key, run_key=key)

    return nightly_recordings_schedule
