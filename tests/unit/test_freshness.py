"""Yesterday's partition freshness: which day is due when, and what counts as complete."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from dagster import AssetMaterialization, DagsterInstance

from siro_assets.pipeline.freshness import evaluate_partition_freshness, partition_deadline
from siro_assets.pipeline.partitions import partition_key
from tests.default_instance import RECORDINGS_KEY


def _utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("now", "expected_day", "deadline"),
    [
        (_utc(2026, 3, 10, 1, 59, 59), date(2026, 3, 8), _utc(2026, 3, 9, 2)),  # before today's deadline
        (_utc(2026, 3, 10, 2, 0, 0), date(2026, 3, 9), _utc(2026, 3, 10, 2)),  # at the deadline
        (_utc(2026, 3, 10, 23, 59), date(2026, 3, 9), _utc(2026, 3, 10, 2)),
        (_utc(2026, 3, 1, 2, 30), date(2026, 2, 28), _utc(2026, 3, 1, 2)),  # across a month
        # 03:30 at UTC+2 is 01:30 UTC: still before today's deadline.
        (datetime(2026, 3, 10, 3, 30, tzinfo=timezone(timedelta(hours=2))), date(2026, 3, 8), _utc(2026, 3, 9, 2)),
    ],
)
def test_the_partition_due_is_the_day_before_the_last_deadline(now, expected_day, deadline):
    due = partition_deadline(now)
    assert (due.expected_day, due.deadline, due.next_deadline) == (expected_day, deadline, deadline + timedelta(days=1))
    assert due.complete_after == _utc(expected_day.year, expected_day.month, expected_day.day) + timedelta(days=1)


def test_naive_time_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        partition_deadline(datetime(2026, 3, 10, 3))


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as instance:
        yield instance


def _materialize(instance: DagsterInstance, day: date) -> None:
    instance.report_runless_asset_event(AssetMaterialization(RECORDINGS_KEY, partition=partition_key(day)))


def test_fails_when_the_due_partition_was_never_materialized(instance):
    now = datetime.now(timezone.utc)
    due = partition_deadline(now)
    _materialize(instance, due.expected_day - timedelta(days=1))  # another day does not count
    result = evaluate_partition_freshness(instance, now, RECORDINGS_KEY)
    assert not result.passed
    assert "never materialized" in result.description
    assert result.metadata["expected_partition"].value == partition_key(due.expected_day)
    assert result.metadata["overdue_minutes"].value >= 0


def test_passes_when_the_due_partition_was_materialized_after_its_day_ended(instance):
    now = datetime.now(timezone.utc)
    due = partition_deadline(now)
    _materialize(instance, due.expected_day)  # recorded now, which is after that day ended
    result = evaluate_partition_freshness(instance, now, RECORDINGS_KEY)
    assert result.passed, result.description
    assert result.metadata["dagster/fresh_until_timestamp"].value == due.next_deadline.timestamp()


def test_a_partition_materialized_while_its_day_was_running_is_not_complete(instance):
    # Evaluate as of three days ahead: the partition then due is the day after tomorrow,
    # and the materialization recorded now happened before that day even began.
    later = datetime.now(timezone.utc) + timedelta(days=3)
    due = partition_deadline(later)
    _materialize(instance, due.expected_day)
    result = evaluate_partition_freshness(instance, later, RECORDINGS_KEY)
    assert not result.passed
    assert "before the day ended" in result.description
