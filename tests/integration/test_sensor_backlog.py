"""The sensor never jams: a large backlog drains over several bounded ticks.

Latency is simulated: every request to the in-process simulator advances a fake
monotonic clock by 100 ms, and the sensor's tick budget runs on that clock, so 800+
pages of "100 ms" cost no real sleeping while the budget sees exactly the time a real
server would have taken.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from dagster import DagsterInstance, build_sensor_context

from siro_assets.api_client.timestamps import parse_ts
from siro_assets.pipeline.automation import sensors
from siro_assets.changes.change_tracking import SensorCursor
from siro_assets.changes.tick_clock import TickClock
from siro_assets.pipeline.automation.dagster_gaps import PARTITION_RANGE_START_TAG
from siro_assets.simulator import SimulatorTransport
from siro_assets.simulator.clock import to_ms
from tests.integration.test_sensor import _definitions
from tests.support import sensor_with, simulated_siro

LATENCY_SECONDS = 0.1
PAGE_CAP = 25
# A Friday noon, with ten days of a busy organization (about 2,200 recordings a day)
# behind it: every recording created since, and every older one linked, summarized or
# deleted since, is a change.
NOW = datetime(2026, 3, 13, 12, tzinfo=timezone.utc)
BACKLOG = timedelta(days=10)
RECORDINGS_PER_DAY = 2200
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def sensor_on(monotonic, page_size: int = PAGE_CAP, **sensor_options):
    """The sensor asking for the API's documented default page size, as a defs.yaml
    would, its tick budget timed by `monotonic`."""
    return sensor_with(page_size=page_size, clock=TickClock(monotonic=monotonic), **sensor_options)


class FakeMonotonic:
    """A monotonic clock that only moves when a simulated request takes time."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def slow_api(monkeypatch) -> FakeMonotonic:
    clock = FakeMonotonic()
    answer = SimulatorTransport.handle_request

    def answer_after_latency(self, request):
        clock.now += LATENCY_SECONDS
        return answer(self, request)

    monkeypatch.setattr(SimulatorTransport, "handle_request", answer_after_latency)
    return clock


@pytest.fixture
def requested_pairs(monkeypatch) -> list:
    """Every (id, updatedAt) change a tick turned into a run request."""
    seen = []
    plan_changes = sensors.plan_changes

    def spy(*args, **kwargs):
        plan, cursor = plan_changes(*args, **kwargs)
        seen.extend(pair for part in plan.partitions.values() for pair in part.pairs)
        return plan, cursor

    monkeypatch.setattr(sensors, "plan_changes", spy)
    return seen


def test_a_20000_change_backlog_drains_over_bounded_ticks_requesting_each_change_once(
    tmp_path, slow_api, requested_pairs
):
    siro = simulated_siro(NOW, simulator_page_size_cap=PAGE_CAP, simulator_recordings_per_day=RECORDINGS_PER_DAY)
    world = siro.simulator_api().world
    start = NOW - BACKLOG
    truth = set()
    for day in world.iter_days((start - world.config.max_event_delay).date(), NOW.date()):
        for r in world.day(day):
            updated = EPOCH + timedelta(milliseconds=r.updated_ms(to_ms(NOW)))
            if EPOCH + timedelta(milliseconds=r.created) <= NOW and updated >= start:
                truth.add((r.id, updated))
    assert len(truth) >= 20_000

    lookback = timedelta(seconds=sensors.DEFAULT_LOOKBACK_SECONDS)
    cursor = SensorCursor(watermark=start + lookback).to_json()
    tick_seconds, requested_days = [], set()
    sensor = sensor_on(slow_api)
    with DagsterInstance.ephemeral() as instance:
        for _ in range(12):
            before = slow_api.now
            context = build_sensor_context(instance=instance, cursor=cursor, resources={"siro_api": siro},
                                           definitions=_definitions(siro, tmp_path))
            result = sensor.evaluate_tick(context)
            tick_seconds.append(slow_api.now - before)
            cursor = result.cursor
            requested_days |= {rr.partition_key or rr.tags[PARTITION_RANGE_START_TAG]
                               for rr in result.run_requests or []}
            if SensorCursor.from_json(cursor).watermark >= max(u for _, u in truth):
                break

    # Several ticks, each well inside Dagster's 60 s (and the 45 s).
    assert len(tick_seconds) >= 3, tick_seconds
    assert max(tick_seconds) < 45, tick_seconds
    # Every change requested, none twice.
    counts = Counter(requested_pairs)
    assert set(counts) == truth
    assert max(counts.values()) == 1
    assert requested_days


def test_a_millisecond_shared_by_more_recordings_than_a_tick_can_list_is_walked_by_created_at(
    tmp_path, slow_api, requested_pairs, monkeypatch
):
    from tests.integration.test_sensor import find_tie

    t, ids = find_tie(min_size=5)
    # Two rows a page and two pages a tick: the tie alone needs three pages.
    tie_sensor = sensor_on(slow_api, page_size=2, max_pages_per_tick=2)
    siro = simulated_siro(t + timedelta(minutes=1), simulator_page_size_cap=2)
    lookback = timedelta(seconds=sensors.DEFAULT_LOOKBACK_SECONDS)
    cursor = SensorCursor(watermark=t + lookback).to_json()  # the listing starts exactly at the tie
    walked_by_created_at = False
    with DagsterInstance.ephemeral() as instance:
        for _ in range(80):
            before = slow_api.now
            context = build_sensor_context(instance=instance, cursor=cursor, resources={"siro_api": siro},
                                           definitions=_definitions(siro, tmp_path))
            cursor = tie_sensor.evaluate_tick(context).cursor
            assert slow_api.now - before <= 2 * LATENCY_SECONDS + 1e-9  # never more than two pages
            state = SensorCursor.from_json(cursor)
            walked_by_created_at |= state.tie is not None
            if walked_by_created_at and state.tie is None:
                break
    assert walked_by_created_at and state.watermark > t and state.since > t
    assert len(cursor) < 2000  # the tied ids are not kept in the cursor
    counts = Counter(requested_pairs)
    assert {(rid, t) for rid in ids} <= set(counts) and max(counts.values()) == 1


def test_an_outage_in_the_middle_of_a_walk_keeps_the_complete_chunks_and_nothing_else(
    tmp_path, slow_api, requested_pairs
):
    from tests.integration.test_sensor import WORLD

    now = datetime(2026, 3, 10, 12, tzinfo=timezone.utc)
    start = now - timedelta(days=10)
    # Twelve pages answer, then Siro is down for longer than the sensor's retries.
    siro = simulated_siro(now, simulator_page_size_cap=PAGE_CAP, simulator_fault_script=["ok"] * 12 + ["503"] * 50)
    lookback = timedelta(seconds=sensors.DEFAULT_LOOKBACK_SECONDS)
    sensor = sensor_on(slow_api)
    with DagsterInstance.ephemeral() as instance:
        context = build_sensor_context(instance=instance, cursor=SensorCursor(watermark=start + lookback).to_json(),
                                       resources={"siro_api": siro}, definitions=_definitions(siro, tmp_path))
        result = sensor.evaluate_tick(context)
    watermark = SensorCursor.from_json(result.cursor).watermark
    assert start < watermark < now - timedelta(days=1)
    # Exactly the changes below the new watermark were requested: none skipped, none from
    # the chunk the outage cut short.
    truth = {(p["id"], parse_ts(p["updatedAt"])) for p in WORLD.recordings(now, created_from=start - timedelta(days=5))}
    assert set(requested_pairs) == {(rid, u) for rid, u in truth if start <= u < watermark}


class FakeLatencyClock(FakeMonotonic):
    """The simulator's injected ``sleep``: a request's latency moves this clock, not the wall."""

    def sleep(self, seconds: float) -> None:
        self.now += seconds


DENSE_NOW = datetime(2026, 3, 13, 12, tzinfo=timezone.utc)
DENSE_BACKLOG = timedelta(days=5)


def _dense_backlog_api(clock: FakeLatencyClock, latency: float, recordings_per_day: int):
    from siro_assets.simulator import FaultConfig, FixedClock, SimulatorApi, World, WorldConfig

    world = World(WorldConfig(recordings_per_day=recordings_per_day, bulk_resyncs_per_day=4))
    return SimulatorApi(world, FixedClock(DENSE_NOW), page_size_cap=PAGE_CAP,
                        faults=FaultConfig(latency=latency), sleep=clock.sleep)


def _truth(world, start: datetime, now: datetime) -> set:
    now_ms = to_ms(now)
    out = set()
    for day in world.iter_days((start - world.config.max_event_delay).date(), now.date()):
        for r in world.day(day):
            updated = EPOCH + timedelta(milliseconds=r.updated_ms(now_ms))
            if r.created <= now_ms and updated >= start:
                out.add((r.id, updated))
    return out


def test_a_dense_five_day_backlog_with_bulk_resyncs_drains_in_a_handful_of_ticks(
    tmp_path, monkeypatch, requested_pairs
):
    """Issue 16, item 2: 25-row pages, 300 ms a request, ~4,800 changes over 5 days with
    bulk re-syncs (30-45 recordings on one millisecond, at midnight and 23:59:59.999)."""
    from siro_assets.simulator.resource import SimulatedSiroApiResource

    clock = FakeLatencyClock()
    api = _dense_backlog_api(clock, latency=0.3, recordings_per_day=900)
    monkeypatch.setattr(SimulatedSiroApiResource, "simulator_api", lambda self: api)
    sensor = sensor_on(clock)
    walks = []
    walk_backlog = sensors.walk_backlog

    def spy(*args, **kwargs):
        walks.append(walk_backlog(*args, **kwargs))
        return walks[-1]

    monkeypatch.setattr(sensors, "walk_backlog", spy)

    start = DENSE_NOW - DENSE_BACKLOG
    truth = _truth(api.world, start, DENSE_NOW)
    ties = Counter(u for _, u in truth)
    assert len(truth) >= 4000
    assert sum(1 for n in ties.values() if n >= 30) >= 10
    assert any(ties[u] >= 30 for u in ties if u.time() in (datetime.min.time(), datetime.max.time().replace(microsecond=999000)))

    siro = simulated_siro(DENSE_NOW, simulator_page_size_cap=PAGE_CAP)
    lookback = timedelta(seconds=sensors.DEFAULT_LOOKBACK_SECONDS)
    # The chunk width a previous tick left behind, as in the log ("next chunk width 0:00:05").
    cursor = SensorCursor(watermark=start + lookback, span=timedelta(seconds=5)).to_json()
    ticks = []
    with DagsterInstance.ephemeral() as instance:
        for _ in range(30):
            before, requests_before = clock.now, api.request_count
            context = build_sensor_context(instance=instance, cursor=cursor, resources={"siro_api": siro},
                                           definitions=_definitions(siro, tmp_path))
            cursor = sensor.evaluate_tick(context).cursor
            ticks.append((clock.now - before, api.request_count - requests_before, walks[-1].abandoned_pages))
            if walks[-1].reached_now:
                break
    print(f"dense backlog: {len(truth)} changes, {len(ticks)} ticks (seconds, requests, dropped): {ticks}")
    assert walks[-1].reached_now, ticks
    assert len(ticks) <= 5, ticks  # the minimum is 2 (~190 pages at ~100 a tick)
    assert max(s for s, _, _ in ticks) <= 30 + 0.3 * 3 + 1e-6, ticks
    for _, requests, dropped in ticks:
        assert dropped <= 0.10 * requests, ticks
    counts = Counter(requested_pairs)
    assert set(counts) == truth
    assert max(counts.values()) == 1
