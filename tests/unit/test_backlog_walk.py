"""The chunked backlog walk: bounded ticks, nothing listed twice into a plan, nothing skipped."""

from __future__ import annotations

import math
import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from siro_assets.changes.backlog_walk import MIN_SPAN, TickBudget, walk_backlog
from siro_assets.changes.change_tracking import SensorCursor, plan_changes, query_start

NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)
LOOKBACK = timedelta(minutes=5)
CREATED = datetime(2026, 3, 1, 9, tzinfo=UTC)


class FakeApi:
    """`updatedAt:gte/lt` listings over fixed rows, in no particular order, each page
    costing `latency` seconds of a fake clock."""

    def __init__(self, rows, page_size=25, latency=0.1, fail_after: int | None = None):
        self.rows, self.page_size, self.latency, self.fail_after = rows, page_size, latency, fail_after
        self.clock = 0.0
        self.pages = 0

    def __call__(self):
        return self.clock

    def list_pages(self, lo, hi):
        match = [r for r in self.rows if r[2] >= lo and (hi is None or r[2] < hi)]
        random.Random(f"{lo}{hi}").shuffle(match)  # the API documents no order
        for k in range(0, max(len(match), 1), self.page_size):
            if self.fail_after is not None and self.pages >= self.fail_after:
                raise ConnectionError("simulated outage")
            self.clock += self.latency
            self.pages += 1
            yield match[k : k + self.page_size], k + self.page_size < len(match)


def backlog(n: int, start: datetime, spread: timedelta, tie_every: int = 40) -> list:
    """`n` changes spread over `spread`, many sharing a millisecond (bulk syncs)."""
    rng = random.Random(n)
    rows, stamp = [], start
    for i in range(n):
        if i % tie_every:
            stamp = start + timedelta(milliseconds=rng.randrange(int(spread / MIN_SPAN)))
        rows.append((f"r{i}", CREATED, stamp))
    return rows


def drain(api: FakeApi, cursor: SensorCursor, budget: TickBudget, ticks: int = 50):
    planned, tick_seconds = Counter(), []
    for _ in range(ticks):
        start = query_start(cursor, NOW, LOOKBACK)
        before = api.clock
        walk = walk_backlog(api.list_pages, start, NOW, cursor.span, budget, api)
        tick_seconds.append(api.clock - before)
        assert walk.listed_through is None or walk.listed_through <= NOW
        plan, cursor = plan_changes(cursor, walk.rows, NOW, LOOKBACK, listed_through=walk.listed_through)
        cursor = SensorCursor(watermark=cursor.watermark, seen=cursor.seen, since=cursor.since, span=walk.span)
        planned.update(p for part in plan.partitions.values() for p in part.pairs)
        if walk.reached_now:
            return planned, tick_seconds, cursor
    raise AssertionError(f"not drained after {ticks} ticks")


def test_a_backlog_with_ties_drains_in_bounded_ticks_with_every_change_planned_once():
    rows = backlog(3000, NOW - timedelta(days=2), timedelta(days=2))
    api = FakeApi(rows)
    budget = TickBudget(seconds=10, pages=1000)  # ~100 pages of 0.1 s per tick
    planned, tick_seconds, cursor = drain(api, SensorCursor(watermark=NOW - timedelta(days=2) + LOOKBACK), budget)
    assert len(tick_seconds) >= 2 and max(tick_seconds) <= budget.seconds + api.latency
    assert set(planned) == {(rid, u) for rid, _, u in rows} and max(planned.values()) == 1
    assert cursor.watermark == max(u for _, _, u in rows)


def test_the_page_budget_bounds_a_tick_too():
    api = FakeApi(backlog(2000, NOW - timedelta(hours=6), timedelta(hours=6)), latency=0.0)
    planned, tick_seconds, _ = drain(api, SensorCursor(watermark=NOW - timedelta(hours=6) + LOOKBACK),
                                     TickBudget(seconds=30, pages=20))
    assert len(tick_seconds) >= 4 and len(planned) == 2000


def test_an_idle_tick_is_one_request():
    api = FakeApi([])
    walk = walk_backlog(api.list_pages, NOW - LOOKBACK, NOW, None, TickBudget(30, 300), api)
    assert walk.reached_now and api.pages == 1 and walk.listed_through is None


def test_a_chunk_cut_short_is_dropped_then_listed_again_narrower():
    # Everything in one dense hour: the first chunk cannot finish within its share.
    rows = backlog(5000, NOW - timedelta(hours=2), timedelta(hours=1), tie_every=10**9)
    api = FakeApi(rows, latency=0.0)
    walk = walk_backlog(api.list_pages, NOW - timedelta(hours=2), NOW, timedelta(hours=2), TickBudget(30, 100), api)
    assert walk.abandoned_pages > 0 and walk.span < timedelta(hours=2)
    # Only complete chunks count, and the watermark may move to the last one's end.
    assert all(u < walk.listed_through for _, _, u in walk.rows)
    assert {r for r in rows if r[2] < walk.listed_through} == set(walk.rows)


def test_an_api_error_keeps_the_complete_chunks_and_drops_the_broken_one():
    rows = backlog(1000, NOW - timedelta(days=1), timedelta(days=1))
    api = FakeApi(rows, fail_after=12)
    walk = walk_backlog(api.list_pages, NOW - timedelta(days=1), NOW, timedelta(hours=1), TickBudget(30, 300), api,
                        errors=(ConnectionError,))
    assert isinstance(walk.error, ConnectionError) and not walk.reached_now
    assert walk.listed_through is not None
    assert set(walk.rows) == {r for r in rows if r[2] < walk.listed_through}


def test_more_ties_in_one_millisecond_than_a_tick_can_list_is_reported_not_skipped():
    tie = NOW - timedelta(minutes=30)
    rows = [(f"r{i}", CREATED, tie) for i in range(500)]
    api = FakeApi(rows, latency=0.0)
    cursor = SensorCursor(watermark=tie + LOOKBACK)  # the listing starts exactly at the tie
    walk = walk_backlog(api.list_pages, query_start(cursor, NOW, LOOKBACK), NOW, MIN_SPAN, TickBudget(30, 10), api)
    assert walk.rows == [] and walk.listed_through is None
    assert "single millisecond" in walk.stopped


@pytest.mark.parametrize("seconds,pages", [(0, 10), (10, 0)])
def test_a_budget_must_allow_something(seconds, pages):
    with pytest.raises(ValueError):
        TickBudget(seconds=seconds, pages=pages)


def resync_backlog(start: datetime, days: int, per_day: int, seed: int = 16) -> list:
    """`per_day` changes a day, plus four bulk re-syncs a day that give 30-45 recordings one
    identical millisecond (one at 00:00:00.000, one at 23:59:59.999)."""
    rng = random.Random(seed)
    rows = []
    for d in range(days):
        day0 = start + timedelta(days=d)
        for i in range(per_day):
            rows.append((f"d{d}r{i}", CREATED, day0 + timedelta(milliseconds=rng.randrange(86_400_000))))
        for j, at in enumerate([day0, day0 + timedelta(days=1) - MIN_SPAN,
                                *(day0 + timedelta(milliseconds=rng.randrange(86_400_000)) for _ in range(2))]):
            rows += [(f"d{d}s{j}r{k}", CREATED, at) for k in range(rng.randint(30, 45))]
    return rows


def drain_counting(api: FakeApi, cursor: SensorCursor, budget: TickBudget, ticks: int = 50):
    """Like `drain`, also counting each tick's pages and the pages it dropped."""
    planned, per_tick = Counter(), []
    for _ in range(ticks):
        start = query_start(cursor, NOW, LOOKBACK)
        walk = walk_backlog(api.list_pages, start, NOW, cursor.span, budget, api)
        per_tick.append((walk.pages, walk.abandoned_pages))
        plan, cursor = plan_changes(cursor, walk.rows, NOW, LOOKBACK, listed_through=walk.listed_through)
        cursor = SensorCursor(watermark=cursor.watermark, seen=cursor.seen, since=cursor.since, span=walk.span)
        planned.update(p for part in plan.partitions.values() for p in part.pairs)
        if walk.reached_now:
            return planned, per_tick
    raise AssertionError(f"not drained after {ticks} ticks: {per_tick}")


class SortedApi(FakeApi):
    """A server that happens to list by (updatedAt, id), as the simulator does."""

    def list_pages(self, lo, hi):
        match = sorted((r for r in self.rows if r[2] >= lo and (hi is None or r[2] < hi)), key=lambda r: (r[2], r[0]))
        for k in range(0, max(len(match), 1), self.page_size):
            self.clock += self.latency
            self.pages += 1
            yield match[k : k + self.page_size], k + self.page_size < len(match)


@pytest.mark.parametrize("api_class", [FakeApi, SortedApi], ids=["in no order", "in updatedAt order"])
def test_a_dense_backlog_drains_in_a_handful_of_ticks_dropping_at_most_a_tenth_of_each(api_class):
    # Issue 16, item 2: five days, ~4,800 changes with bulk re-syncs, 25-row pages, 300 ms a page,
    # the sensor's default budget (30 s, 300 pages): about 100 pages a tick.
    start = NOW - timedelta(days=5)
    rows = resync_backlog(start, days=5, per_day=800)
    api = api_class(rows, page_size=25, latency=0.3)
    planned, per_tick = drain_counting(api, SensorCursor(watermark=start + LOOKBACK, span=timedelta(seconds=5)),
                                       TickBudget(seconds=30, pages=300))
    minimum = math.ceil(len(rows) / 25 / 100)
    assert len(per_tick) <= minimum + (1 if api_class is SortedApi else 3), per_tick
    assert all(dropped <= 0.10 * pages for pages, dropped in per_tick), per_tick
    assert set(planned) == {(rid, u) for rid, _, u in rows} and max(planned.values()) == 1


def test_an_ordered_chunk_cut_by_the_budget_keeps_every_row_before_its_last_millisecond():
    # 45 recordings share one millisecond across a page boundary: the cut keeps the rows
    # before it and goes on from it, so the tied rows are listed again whole.
    tie = NOW - timedelta(hours=1)
    rows = [(f"a{i}", CREATED, tie - timedelta(seconds=100 - i)) for i in range(40)]
    rows += [(f"t{i}", CREATED, tie) for i in range(45)] + [(f"z{i}", CREATED, tie + timedelta(seconds=i + 1)) for i in range(60)]
    api = SortedApi(rows, page_size=25, latency=0.0)
    first = walk_backlog(api.list_pages, NOW - timedelta(hours=2), NOW, timedelta(hours=3), TickBudget(30, 3), api)
    assert first.listed_through == tie and not first.reached_now
    # Three pages: 25 + 15 rows before the tie, then 10 + 25 tied rows; only the third
    # page (tied rows alone) is of no use.
    assert set(first.rows) == set(rows[:40]) and first.abandoned_pages == 1
    second = walk_backlog(api.list_pages, tie, NOW, first.span, TickBudget(30, 300), api)
    assert second.reached_now and set(second.rows) == set(rows[40:])
