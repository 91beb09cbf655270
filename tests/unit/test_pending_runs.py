"""Pending days: kept until a run succeeds, requested again with backoff, never doubled."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from siro_assets.changes.change_tracking import (
    InvalidSensorCursor,
    PartitionChanges,
    SensorCursor,
    build_ranges,
)
from siro_assets.changes.pending_runs import (
    MISSING_RUN_GRACE,
    RequestState,
    covers,
    next_pending,
    owed_since,
    rerequest_backoff,
    review_pending,
)
from siro_assets.changes.sensor_cursor import PendingRequest, TieWalk

NOW = datetime(2026, 11, 28, 4, 0, tzinfo=UTC)
D1, D2, D3, D4, D5, D6 = (date(2026, 3, d) for d in range(1, 7))


def ago(minutes: float) -> datetime:
    return NOW - timedelta(minutes=minutes)


def test_backoff_doubles_up_to_half_an_hour():
    assert [rerequest_backoff(n) // timedelta(minutes=1) for n in range(1, 9)] == [1, 2, 4, 8, 16, 30, 30, 30]


def test_review_sorts_days_by_the_state_of_their_request():
    pending = {
        D1: PendingRequest("ok", ago(3)),
        D2: PendingRequest("queued", ago(90)),
        D3: PendingRequest("failed-recently", ago(3), attempt=3),  # backoff 4 min
        D4: PendingRequest("failed-long-ago", ago(5), attempt=3),
        D5: PendingRequest("not-created-yet", ago(2)),
        D6: PendingRequest("lost", NOW - MISSING_RUN_GRACE),
    }
    states = {
        "ok": RequestState.SUCCEEDED,
        "queued": RequestState.QUEUED,
        "failed-recently": RequestState.FAILED,
        "failed-long-ago": RequestState.FAILED,
    }
    review = review_pending(pending, states, NOW)
    assert review.done == [D1]
    assert review.queued == {D2}
    assert set(review.waiting) == {D2, D3, D5}
    assert set(review.due) == {D4, D6}
    assert review.failed == {D3, D4, D6}


@pytest.mark.parametrize("state", [RequestState.RUNNING, RequestState.QUEUED, RequestState.RETRYING])
def test_a_request_in_flight_is_never_requested_again(state):
    review = review_pending({D1: PendingRequest("k", ago(600), attempt=1)}, {"k": state}, NOW)
    assert not review.due and D1 in review.waiting


def test_next_pending_counts_attempts_of_failed_days_only():
    previous = {D1: PendingRequest("old1", ago(10), attempt=2), D2: PendingRequest("old2", ago(1))}
    review = review_pending(previous, {"old1": RequestState.FAILED, "old2": RequestState.RUNNING}, NOW)
    out = next_pending(review, {D1: "new", D2: "new", D3: "new"}, {}, previous, NOW)
    assert out[D1] == PendingRequest("new", NOW, attempt=3)
    assert out[D2] == PendingRequest("new", NOW, attempt=1)  # a new change, not a failure
    assert out[D3] == PendingRequest("new", NOW, attempt=1)


def test_a_day_relied_on_a_queued_run_keeps_that_run():
    previous = {D1: PendingRequest("mine", ago(10))}
    review = review_pending(previous, {"mine": RequestState.QUEUED}, NOW)
    out = next_pending(review, {}, {D1: "mine", D2: "run:abc"}, previous, NOW)
    assert out[D1] == previous[D1]
    assert out[D2] == PendingRequest("run:abc", NOW, attempt=1)


def test_rerequest_keys_are_new_per_attempt_and_stable_per_tick():
    failed = {D2: PendingRequest("2026-03-02..2026-03-02@2026-03-09T10:00:00.000Z#abc", ago(10), attempt=1)}
    (retry,) = build_ranges({}, failed, max_runs=5)
    assert retry.requested_days == (D2,) and retry.newest_updated_at is None
    assert "@retry#" in retry.run_key and retry.run_key not in {p.key for p in failed.values()}
    assert build_ranges({}, failed, max_runs=5)[0].run_key == retry.run_key  # a repeated tick
    later = {D2: PendingRequest(retry.run_key, NOW, attempt=2)}
    assert build_ranges({}, later, max_runs=5)[0].run_key != retry.run_key


def test_changed_and_retried_days_share_runs():
    change = PartitionChanges(day=D1, newest_updated_at=NOW, pairs=(("a", NOW),))
    ranges = build_ranges({D1: change}, {D2: PendingRequest("k", ago(10))}, max_runs=1)
    assert [(r.first_day, r.last_day, r.requested_days) for r in ranges] == [(D1, D2, (D1, D2))]
    assert ranges[0].count == 1 and set(ranges[0].retried) == {D2}


def test_cursor_round_trip_keeps_span_and_pending_and_reads_version_1():
    cursor = SensorCursor(
        watermark=NOW, seen=frozenset({("a", NOW)}), span=timedelta(minutes=7),
        pending={D1: PendingRequest("k1", ago(3), attempt=2, since=ago(70)), D2: PendingRequest("run:xyz", ago(1))},
        tie=TieWalk(at=ago(30), created_from=ago(60 * 24), span=timedelta(hours=2)),
    )
    raw = cursor.to_json()
    assert SensorCursor.from_json(raw) == cursor and '"v":2' in raw
    v1 = '{"v":1,"watermark":"2026-03-10T11:58:02.415Z","seen":{"2026-03-10T11:58:02.415Z":["rec_a"]}}'
    assert SensorCursor.from_json(v1).pending == {} and SensorCursor.from_json(v1).span is None


@pytest.mark.parametrize("raw", [
    '{"v":2,"watermark":null,"seen":{},"pending":{"2026-03-01":{"key":"k"}}}',
    '{"v":2,"watermark":null,"seen":{},"pending":{"2026-03-01":{"key":"k","at":"2026-03-01T00:00:00Z","n":0}}}',
    '{"v":2,"watermark":null,"seen":{},"span_ms":0}',
])
def test_bad_pending_or_span_is_an_unreadable_cursor(raw):
    with pytest.raises(InvalidSensorCursor, match="--delete"):
        SensorCursor.from_json(raw)


def test_a_pending_day_keeps_owing_its_oldest_change_until_its_request_succeeds():
    previous = {
        D1: PendingRequest("failed", ago(1), since=ago(10)),  # in its backoff
        D2: PendingRequest("running", ago(5), since=ago(20)),
        D3: PendingRequest("ok", ago(5), since=ago(30)),
        D4: PendingRequest("legacy", ago(5)),  # written before `since` existed
        D5: PendingRequest("due", ago(10), since=ago(40)),
    }
    states = {"failed": RequestState.FAILED, "running": RequestState.RUNNING, "ok": RequestState.SUCCEEDED,
              "legacy": RequestState.RETRYING, "due": RequestState.FAILED}
    review = review_pending(previous, states, NOW)
    owed = owed_since(review, {D1: ago(3), D2: ago(25), D3: ago(2), D4: ago(2), D6: ago(1)})
    assert owed == {D1: ago(10), D2: ago(25), D3: ago(2), D4: None, D5: ago(40), D6: ago(1)}

    out = next_pending(review, {D1: "new", D3: "new", D5: "again"}, {D2: "run:q"}, previous, NOW, owed)
    assert out[D1] == PendingRequest("new", NOW, attempt=2, since=ago(10))  # not ago(3): X is still owed
    assert out[D2] == PendingRequest("run:q", NOW, since=ago(25))
    assert out[D3] == PendingRequest("new", NOW, since=ago(2))  # the old change was fetched
    assert out[D4] == previous[D4] and out[D5].since == ago(40)


def test_a_run_covers_a_change_only_if_it_lists_from_it_or_pulls_the_whole_day():
    assert covers(None, ago(5)) and covers(None, None)
    assert covers(ago(5), ago(5)) and covers(ago(6), ago(5))
    assert not covers(ago(5), ago(6))  # path B: since = T0, the change at T0 - 2 s
    assert not covers(ago(5), None)  # unknown: only a whole-day run is enough


def test_a_pending_entry_without_since_reads_as_owing_the_whole_day():
    raw = '{"v":2,"watermark":null,"seen":{},"pending":{"2026-03-01":{"key":"k","at":"2026-03-01T00:00:00Z","n":1}}}'
    assert SensorCursor.from_json(raw).pending[D1].since is None
