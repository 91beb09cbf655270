"""The sensor's pure bookkeeping: cursor, dedup by (id, updatedAt), grouping, run keys."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from siro_assets.changes.change_tracking import (
    InvalidSensorCursor,
    SensorCursor,
    group_days,
    plan_changes,
    query_start,
    run_key_for,
)

LOOKBACK = timedelta(minutes=5)
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def ts(minutes: float, base: datetime = NOW) -> datetime:
    return base + timedelta(minutes=minutes)


def change(rid: str, created_day: int, updated: datetime) -> tuple[str, datetime, datetime]:
    return (rid, datetime(2026, 3, created_day, 9, 30, tzinfo=UTC), updated)


def requested(plan) -> set[tuple[str, datetime]]:
    return {pair for p in plan.partitions.values() for pair in p.pairs}


def test_first_tick_starts_at_now_minus_lookback_and_requests_what_it_sees():
    cursor = SensorCursor()
    assert query_start(cursor, NOW, LOOKBACK) == NOW - LOOKBACK
    plan, new = plan_changes(cursor, [change("a", 7, ts(-2)), change("b", 9, ts(-1))], NOW, LOOKBACK)
    assert plan.query_start == NOW - LOOKBACK
    assert sorted(plan.partitions) == [date(2026, 3, 7), date(2026, 3, 9)]
    assert new.watermark == ts(-1)
    assert new.seen == {("a", ts(-2)), ("b", ts(-1))}


def test_first_tick_with_nothing_keeps_its_start_so_the_next_tick_does_not_drift():
    plan, new = plan_changes(SensorCursor(), [], NOW, LOOKBACK)
    assert plan.partitions == {} and plan.listed == 0
    assert new.watermark is None  # nothing observed: no watermark is invented
    # An hour later (daemon was down) the listing starts exactly where the first one did:
    # not later (nothing in between is lost), not earlier (no history replayed).
    assert query_start(new, NOW + timedelta(hours=1), LOOKBACK) == NOW - LOOKBACK
    assert SensorCursor.from_json(new.to_json()) == new


def test_an_early_first_change_does_not_pull_in_history_before_the_first_tick():
    _, first = plan_changes(SensorCursor(), [], NOW, LOOKBACK)
    # The first change is stamped 1 minute after the first tick's start.
    _, cur = plan_changes(first, [change("a", 9, NOW - LOOKBACK + timedelta(minutes=1))], NOW + timedelta(minutes=1), LOOKBACK)
    assert query_start(cur, NOW + timedelta(minutes=2), LOOKBACK) == NOW - LOOKBACK
    # Once the watermark is a full lookback past the start, `since` is dropped.
    _, cur = plan_changes(cur, [change("b", 9, NOW + timedelta(minutes=3))], NOW + timedelta(minutes=3), LOOKBACK)
    assert cur.since is None and query_start(cur, NOW, LOOKBACK) == NOW + timedelta(minutes=3) - LOOKBACK


def test_ties_at_the_watermark_across_two_ticks_are_neither_missed_nor_repeated():
    tie = ts(0)
    # Tick 1 saw two of the recordings stamped at `tie` (the third was on a later page
    # that was not visible yet / arrived after the listing).
    tick1 = [change("a", 8, ts(-3)), change("b", 8, tie), change("c", 8, tie)]
    plan1, cur1 = plan_changes(SensorCursor(watermark=ts(-4)), tick1, NOW, LOOKBACK)
    assert requested(plan1) == {("a", ts(-3)), ("b", tie), ("c", tie)}
    assert cur1.watermark == tie
    # Tick 2 lists from watermark - lookback (gte is inclusive): a, b, c again plus d at `tie`.
    tick2 = [*tick1, change("d", 9, tie)]
    plan2, cur2 = plan_changes(cur1, tick2, NOW + timedelta(minutes=1), LOOKBACK)
    assert requested(plan2) == {("d", tie)}
    assert plan2.duplicates == 3
    assert list(plan2.partitions) == [date(2026, 3, 9)]
    assert cur2.watermark == tie


def test_duplicates_are_never_requested_again_while_a_later_change_is():
    listing = [change("a", 8, ts(-1))]
    plan1, cur1 = plan_changes(SensorCursor(watermark=ts(-2)), listing, NOW, LOOKBACK)
    assert plan1.change_count == 1
    for k in range(1, 4):
        plan, cur1 = plan_changes(cur1, listing, NOW + timedelta(minutes=k), LOOKBACK)
        assert plan.partitions == {} and plan.duplicates == 1
    # The same recording changes again: a new (id, updatedAt) pair, requested again.
    plan, cur1 = plan_changes(cur1, [*listing, change("a", 8, ts(2))], NOW + timedelta(minutes=5), LOOKBACK)
    assert requested(plan) == {("a", ts(2))}


def test_duplicates_within_one_listing_count_once():
    rows = [change("a", 8, ts(-1)), change("a", 8, ts(-1))]
    plan, _ = plan_changes(SensorCursor(watermark=ts(-2)), rows, NOW, LOOKBACK)
    assert plan.change_count == 1 and plan.duplicates == 1


def test_lookback_re_sees_a_change_that_became_visible_late():
    plan1, cur1 = plan_changes(SensorCursor(watermark=ts(-10)), [change("a", 8, ts(0))], NOW, LOOKBACK)
    # "late" was stamped 2 minutes before the watermark but was not listed at tick 1.
    late = change("late", 6, ts(-2))
    assert query_start(cur1, NOW, LOOKBACK) <= late[2]
    plan2, cur2 = plan_changes(cur1, [late, change("a", 8, ts(0))], NOW + timedelta(minutes=1), LOOKBACK)
    assert requested(plan2) == {("late", ts(-2))}
    assert cur2.watermark == ts(0)  # an older change never moves the watermark back


def test_watermark_is_monotonic_and_never_beyond_what_was_observed():
    cur = SensorCursor(watermark=ts(0))
    _, cur = plan_changes(cur, [change("x", 8, ts(-3))], NOW, LOOKBACK)
    assert cur.watermark == ts(0)
    _, cur = plan_changes(cur, [], NOW + timedelta(hours=2), LOOKBACK)
    assert cur.watermark == ts(0)  # idle ticks do not jump to the clock
    _, cur = plan_changes(cur, [change("y", 8, ts(7))], NOW + timedelta(hours=3), LOOKBACK)
    assert cur.watermark == ts(7)


def test_seen_set_stays_bounded_to_the_lookback_window():
    cur = SensorCursor(watermark=ts(0))
    for minute in range(0, 120):
        rows = [change(f"r{minute}-{k}", 8, ts(minute)) for k in range(3)]
        _, cur = plan_changes(cur, rows, ts(minute), LOOKBACK)
        assert all(u >= cur.watermark - LOOKBACK for _, u in cur.seen)
    # 5-minute window, 3 changes per minute (inclusive bound): at most 6 minutes' worth.
    assert len(cur.seen) <= 18
    # Round trip keeps it intact, and stays compact.
    assert SensorCursor.from_json(cur.to_json()) == cur
    assert len(cur.to_json()) < 1000


def test_burst_over_30_days_becomes_a_bounded_set_of_ranges_covering_every_day():
    start = date(2026, 2, 1)
    # 30 changed days with gaps: every day of Feb 1-20, then every other day from Feb 22.
    days = [start + timedelta(days=n) for n in range(20)] + [date(2026, 2, 22) + timedelta(days=2 * n) for n in range(10)]
    assert len(set(days)) == 30
    rows = [(f"r{n}", datetime.combine(d, datetime.min.time(), UTC) + timedelta(hours=10), ts(-1, NOW) + timedelta(milliseconds=n)) for n, d in enumerate(days)]
    plan, _ = plan_changes(SensorCursor(watermark=ts(-4)), rows, NOW, LOOKBACK)
    assert len(plan.partitions) == 30
    ranges = plan.ranges(max_runs=5)
    assert len(ranges) <= 5
    covered = {r.first_day + timedelta(days=k) for r in ranges for k in range((r.last_day - r.first_day).days + 1)}
    assert set(days) <= covered
    assert sum(r.count for r in ranges) == 30
    assert len({r.run_key for r in ranges}) == len(ranges)
    # Contiguous days alone form one range when the budget allows.
    assert [(r.first_day, r.last_day) for r in plan.ranges(max_runs=100)][0] == (start, date(2026, 2, 20))


def test_group_days_merges_smallest_gaps_first():
    d = lambda n: date(2026, 1, n)  # noqa: E731
    assert group_days([d(1), d(2), d(3), d(10), d(12), d(30)], 10) == [(d(1), d(3)), (d(10), d(10)), (d(12), d(12)), (d(30), d(30))]
    assert group_days([d(1), d(2), d(3), d(10), d(12), d(30)], 2) == [(d(1), d(12)), (d(30), d(30))]
    assert group_days([d(5)], 1) == [(d(5), d(5))]
    assert group_days([], 3) == []


def test_run_key_changes_with_any_new_change_and_is_stable_otherwise():
    day = date(2026, 3, 8)
    k1 = run_key_for(day, day, ts(0), [("a", ts(0)), ("b", ts(-1))])
    assert k1 == run_key_for(day, day, ts(0), [("b", ts(-1)), ("a", ts(0))])
    assert k1.startswith("2026-03-08..2026-03-08@2026-03-10T12:00:00.000Z#")
    # Same day, same newest updatedAt, one more change: a new key (a per-day key would drop it).
    assert k1 != run_key_for(day, day, ts(0), [("a", ts(0)), ("b", ts(-1)), ("c", ts(0))])


def test_days_outside_the_partitions_are_skipped_once():
    rows = [change("old", 1, ts(-1)), change("ok", 8, ts(-1))]
    plan, cur = plan_changes(SensorCursor(watermark=ts(-2)), rows, NOW, LOOKBACK, first_day=date(2026, 3, 5), last_day=date(2026, 3, 10))
    assert list(plan.partitions) == [date(2026, 3, 8)]
    assert plan.skipped == {date(2026, 3, 1): 1}
    plan2, _ = plan_changes(cur, rows, NOW, LOOKBACK, first_day=date(2026, 3, 5), last_day=date(2026, 3, 10))
    assert plan2.skipped == {} and plan2.partitions == {}


@pytest.mark.parametrize("raw", ["garbage", "[]", '{"v": 99}', '{"v":1,"watermark":"yesterday"}', '{"v":1,"watermark":null,"seen":{"2026-01-01T00:00:00.000Z":["a"]}}'])
def test_unreadable_cursor_raises_a_clear_error(raw):
    with pytest.raises(InvalidSensorCursor, match="--delete"):
        SensorCursor.from_json(raw)


def test_cursor_round_trip_and_none_is_the_first_tick():
    assert SensorCursor.from_json(None) == SensorCursor()
    # The UI's "Set cursor value" dialog stores an emptied box as "": that is a reset.
    assert SensorCursor.from_json("") == SensorCursor() == SensorCursor.from_json("  \n")
    cur = SensorCursor(watermark=ts(0), seen=frozenset({("a", ts(0)), ("b", ts(0)), ("c", ts(-1))}))
    raw = cur.to_json()
    assert SensorCursor.from_json(raw) == cur
    assert raw == SensorCursor.from_json(raw).to_json()


def test_naive_datetimes_are_rejected():
    with pytest.raises(ValueError):
        plan_changes(SensorCursor(), [("a", datetime(2026, 3, 8), datetime(2026, 3, 8))], NOW, LOOKBACK)


def test_a_day_dagster_has_not_reached_yet_is_requested_once_it_exists():
    # Siro's clock is slightly ahead: a recording created just after midnight is listed
    # while Dagster's last partition is still the previous day.
    rows = [change("early", 11, ts(-1))]
    plan, cur = plan_changes(SensorCursor(watermark=ts(-2)), rows, NOW, LOOKBACK,
                             first_day=date(2026, 3, 5), last_day=date(2026, 3, 10))
    assert plan.partitions == {} and plan.skipped == {date(2026, 3, 11): 1}
    plan2, _ = plan_changes(cur, rows, NOW + timedelta(seconds=60), LOOKBACK,
                            first_day=date(2026, 3, 5), last_day=date(2026, 3, 11))
    assert list(plan2.partitions) == [date(2026, 3, 11)]


def _bulk_sync(n: int, first: datetime, seconds: int, seed: int = 8) -> list:
    """`n` recordings created over the past 200 days, updated by one CRM sync within
    `seconds` seconds from `first`, many of them on one shared millisecond."""
    import random

    rng = random.Random(seed)
    rows = []
    for i in range(n):
        created = datetime(2025, 8, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(200 * 24 * 60))
        offset = rng.randrange(seconds * 1000) if i % 3 else (i // 3) % 50 * 1000  # ties every third row
        rows.append((f"rec_{i:06d}_bulk", created, first + timedelta(milliseconds=offset)))
    return rows


def test_a_200000_recording_bulk_sync_inside_the_lookback_keeps_the_cursor_small_and_loses_nothing():
    # Issue 16, item 8: the sync lands between two ticks, inside one lookback window.
    watermark = NOW - timedelta(minutes=4)
    rows = _bulk_sync(200_000, watermark, seconds=200)
    cursor = SensorCursor(watermark=watermark)
    plan, cursor = plan_changes(cursor, rows, NOW, LOOKBACK)
    assert requested(plan) == {(r, u) for r, _, u in rows}
    raw = cursor.to_json()
    assert len(raw) < 64_000, len(raw)  # it was ~6 MB, stored and parsed on every tick
    cursor = SensorCursor.from_json(raw)

    # The next tick lists the same window again (the lookback), plus changes that became
    # visible late: one in a second the cursor keeps only as a bucket, one in a second
    # it keeps pair by pair, one newer than everything.
    bulk_second = next(iter(cursor.bulk))
    moved_on = next(r for r in rows if (r[0], r[2]) in cursor.seen)  # a recording updated once more
    rows = [r for r in rows if r is not moved_on]
    late = [("late_in_bucket", NOW - timedelta(days=3), bulk_second + timedelta(milliseconds=7)),
            (moved_on[0], moved_on[1], moved_on[2] + timedelta(milliseconds=1)),
            ("newest", NOW - timedelta(days=1), NOW - timedelta(seconds=10))]
    again, cursor = plan_changes(cursor, rows + late, NOW, LOOKBACK)
    assert {(r, u) for r, _, u in late} <= requested(again)
    # At worst the late change's second is requested again whole; nothing else twice.
    repeated = requested(again) - {(r, u) for r, _, u in late}
    assert all(u - timedelta(microseconds=u.microsecond) == bulk_second for _, u in repeated)
    assert len(cursor.to_json()) < 64_000

    # And a third listing of the same rows requests nothing.
    third, _ = plan_changes(SensorCursor.from_json(cursor.to_json()), rows + late, NOW, LOOKBACK)
    assert third.change_count == 0 and third.duplicates == len(rows) + len(late)


def test_a_bulk_bucket_straddling_the_listing_floor_is_listed_again_whole():
    # The floor (watermark - lookback) falls inside a second kept as a bucket: the next
    # listing starts at that second, so the bucket can still be recognised.
    watermark = NOW - timedelta(minutes=4)
    rows = _bulk_sync(3000, watermark, seconds=1)
    _, cursor = plan_changes(SensorCursor(watermark=watermark), rows, NOW, LOOKBACK)
    assert cursor.bulk
    second = next(iter(cursor.bulk))
    moved = replace(cursor, watermark=second + LOOKBACK + timedelta(milliseconds=500))
    assert query_start(moved, NOW, LOOKBACK) == second
    plan, _ = plan_changes(moved, [r for r in rows if r[2] >= second], NOW, LOOKBACK)
    assert plan.change_count == 0
