"""When yesterday's data is late: a freshness policy on `siro/recordings` and a partition freshness check.

Two signals, because Dagster's `FreshnessPolicy` cannot see partitions: it only asks
whether the asset materialized recently, and the sensor materializes *today's* partition
all day long, so the policy would stay green while yesterday's nightly run kept failing.

- `RAW_FRESHNESS_POLICY`: some run of the raw asset happened between midnight and the
  deadline (02:00 UTC). The nightly schedule runs at 00:15, so the two hours cover a slow
  run and the daemon's two retries.
- `yesterday_partition_complete`: by the deadline, yesterday's partition was materialized
  *after* the day ended, i.e. with the whole day in it. Dagster's
  `build_time_partition_freshness_checks` cannot say this here: with `end_offset=1` the
  partitions' last window is today's, so it would expect today's partial day. The check
  runs inside every pipeline run and, on its own, just after each deadline
  (`partition_freshness_schedule`), so it turns red even when no run happens at all.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetKey,
    AssetRecordsFilter,
    AssetSelection,
    DagsterInstance,
    DefaultScheduleStatus,
    FreshnessPolicy,
    MetadataValue,
    ScheduleDefinition,
    asset_check,
)

from .partitions import day_start, partition_key
from .settings import PipelineSettings

DEADLINE = time(2, 0)
"""UTC time of day by which yesterday's partition must be complete."""

RAW_FRESHNESS_POLICY = FreshnessPolicy.cron(
    deadline_cron=f"{DEADLINE.minute} {DEADLINE.hour} * * *",
    lower_bound_delta=timedelta(hours=DEADLINE.hour, minutes=DEADLINE.minute),
    timezone="UTC",
)


@dataclass(frozen=True)
class PartitionDeadline:
    """The deadline most recently passed and the partition that must be complete by it."""

    deadline: datetime
    next_deadline: datetime
    expected_day: date

    @property
    def complete_after(self) -> datetime:
        """A materialization counts when it was recorded after the expected day ended."""
        return day_start(self.expected_day + timedelta(days=1))


def partition_deadline(now: datetime, deadline: time = DEADLINE) -> PartitionDeadline:
    """Which daily partition must be complete at `now` (timezone-aware): the day before the last deadline."""
    if now.tzinfo is None:
        raise ValueError(f"now must be timezone-aware, got naive {now.isoformat()}")
    now = now.astimezone(timezone.utc)
    today_deadline = datetime.combine(now.date(), deadline, tzinfo=timezone.utc)
    last = today_deadline if now >= today_deadline else today_deadline - timedelta(days=1)
    return PartitionDeadline(
        deadline=last, next_deadline=last + timedelta(days=1), expected_day=last.date() - timedelta(days=1)
    )


def evaluate_partition_freshness(
    instance: DagsterInstance, now: datetime, recordings_key: AssetKey
) -> AssetCheckResult:
    """Pass when the partition due at `now` was materialized after its day ended."""
    due = partition_deadline(now)
    key = partition_key(due.expected_day)
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=recordings_key, asset_partitions=[key]), limit=1
    ).records
    last = datetime.fromtimestamp(records[0].timestamp, timezone.utc) if records else None
    passed = last is not None and last >= due.complete_after
    metadata = {
        "expected_partition": key,
        "deadline": MetadataValue.timestamp(due.deadline),
        "dagster/fresh_until_timestamp": MetadataValue.timestamp(due.next_deadline),
    }
    if last is not None:
        metadata["last_materialized"] = MetadataValue.timestamp(last)
    if passed:
        description = f"Partition {key} was materialized complete at {last:%Y-%m-%d %H:%M} UTC."
    else:
        metadata["overdue_minutes"] = round((now - due.deadline).total_seconds() / 60, 1)
        description = (
            f"Partition {key} is late: due complete by {due.deadline:%Y-%m-%d %H:%M} UTC, "
            + ("never materialized." if last is None
               else f"last materialized {last:%Y-%m-%d %H:%M} UTC, before the day ended.")
            + " Check the nightly schedule's last run, then backfill the day."
        )
    return AssetCheckResult(passed=passed, description=description, metadata=metadata)


def build_partition_freshness(settings: PipelineSettings) -> tuple[AssetChecksDefinition, ScheduleDefinition]:
    """One instance's `yesterday_partition_complete` check and the schedule that runs it."""
    recordings_key = settings.key("recordings")

    @asset_check(
        asset=recordings_key,
        name="yesterday_partition_complete",
        description=(
            f"By {DEADLINE:%H:%M} UTC, yesterday's partition has been materialized after the day "
            "ended (so it holds the whole day). Fails when the nightly run is late or failed."
        ),
    )
    def yesterday_partition_complete(context: AssetCheckExecutionContext) -> AssetCheckResult:
        """Is the partition due by the last deadline complete? Reads the instance, not DuckDB."""
        return evaluate_partition_freshness(context.instance, datetime.now(timezone.utc), recordings_key)

    schedule = ScheduleDefinition(
        name=settings.scoped("partition_freshness_schedule"),
        target=AssetSelection.checks(yesterday_partition_complete),
        cron_schedule=f"{DEADLINE.minute + 5} {DEADLINE.hour} * * *",
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.RUNNING if settings.schedule.enabled else DefaultScheduleStatus.STOPPED,
        description=(
            f"Just after the {DEADLINE:%H:%M} UTC deadline, evaluate yesterday_partition_complete on "
            f"{recordings_key.to_user_string()}, so a missing or failed nightly run shows as a failed check. "
            "Touches no warehouse data."
        ),
    )
    return yesterday_partition_complete, schedule
