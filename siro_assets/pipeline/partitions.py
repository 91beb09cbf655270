"""The one partitioning scheme every table shares: UTC days of a recording's `createdAt`.

The definition itself is per instance (`PipelineSettings.partitions_def`); these helpers
turn keys into dates and back.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from dagster import PartitionKeyRange

from .settings import PARTITION_KEY_FORMAT


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
