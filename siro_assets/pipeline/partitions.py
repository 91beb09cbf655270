"""The one partitioning scheme every table shares: UTC days of a recording's `createdAt`."""

from __future__ import annotations

import os
from datetime import date, datetime, time, timedelta, timezone

from dagster import DailyPartitionsDefinition, PartitionKeyRange

DEFAULT_PARTITIONS_START = "2026-01-01"
PARTITION_KEY_FORMAT = "%Y-%m-%d"


def partitions_start() -> str:
    """First partition date, from `SIRO_PARTITIONS_START` (YYYY-MM-DD) or the default."""
    value = os.environ.get("SIRO_PARTITIONS_START", DEFAULT_PARTITIONS_START)
    try:
        date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"SIRO_PARTITIONS_START must be a date like 2026-01-01, got {value!r}") from exc
    return value


# end_offset=1 makes today's partial day a partition too: the sensor re-pulls it as
# recordings get linked during the day, and the demo shows data from today.
daily_partitions = DailyPartitionsDefinition(
    start_date=partitions_start(), timezone="UTC", end_offset=1, fmt=PARTITION_KEY_FORMAT
)


def partition_date(key: str) -> date:
    """The calendar date of a daily partition key."""
    return datetime.strptime(key, PARTITION_KEY_FORMAT).date()


def partition_key(day: date) -> str:
    """The daily partition key of a date."""
    return day.strftime(PARTITION_KEY_FORMAT)


def day_start(day: date) -> datetime:
    """Midnight UTC that opens `day`."""
    return datetime.combine(day, time.min, tzinfo=timezone.utc)


def dates_in_range(key_range: PartitionKeyRange) -> list[date]:
    """Every date from the range's start key to its end key, both included."""
    first, last = partition_date(key_range.start), partition_date(key_range.end)
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]
