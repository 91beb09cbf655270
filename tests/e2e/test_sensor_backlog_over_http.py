"""End to end: the sensor drains a dense backlog from the simulator served by its own process.

Issue 16, item 2, at a smaller scale than `tests/integration/test_sensor_backlog.py` (real
latency costs real time here): 25-row pages, 20 ms a request, a 1 s tick budget, two
days of changes with bulk re-syncs (30-45 recordings on one millisecond).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from dagster import DagsterInstance, build_sensor_context

from tests.support import sensor_with
from siro_assets.pipeline.automation import sensors
from siro_assets.changes.change_tracking import SensorCursor
from siro_assets.pipeline.resources import SiroApiResource
from siro_assets.simulator import World, WorldConfig
from tests.e2e.processes import simulator
from tests.integration.test_sensor import _definitions
from tests.integration.test_sensor_backlog import _truth

pytestmark = pytest.mark.e2e

TOKEN = "e2e-backlog-token"
NOW = datetime(2026, 3, 13, 12, tzinfo=timezone.utc)
RECORDINGS_PER_DAY = 300
RESYNCS = 4


@pytest.fixture
def dense_simulator():
    with simulator(TOKEN, NOW, "--page-size-cap", "25", "--latency-ms", "20",
                   "--recordings-per-day", str(RECORDINGS_PER_DAY), "--bulk-resyncs-per-day", str(RESYNCS)) as url:
        # The simulator builds its world on the first request (seconds on a loaded
        # machine): build it now, so no tick's budget is spent waiting for it.
        httpx.get(f"{url}/v1/core/recordings", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120)
        yield url


def test_a_dense_backlog_drains_over_http_in_a_few_ticks(dense_simulator, tmp_path, monkeypatch):
    sensor = sensor_with(page_size=25, tick_seconds=1)
    requested, walks = Counter(), []
    plan_changes, walk_backlog = sensors.plan_changes, sensors.walk_backlog

    def plan_spy(*args, **kwargs):
        plan, cursor = plan_changes(*args, **kwargs)
        requested.update(pair for part in plan.partitions.values() for pair in part.pairs)
        return plan, cursor

    def walk_spy(*args, **kwargs):
        walks.append(walk_backlog(*args, **kwargs))
        return walks[-1]

    monkeypatch.setattr(sensors, "plan_changes", plan_spy)
    monkeypatch.setattr(sensors, "walk_backlog", walk_spy)
    # The sensor asks the resource for "now"; over HTTP that is the wall clock, so pin it
    # to the simulator's frozen clock.
    monkeypatch.setattr(SiroApiResource, "now", lambda self: NOW)

    start = NOW - timedelta(days=2)
    world = World(WorldConfig(recordings_per_day=RECORDINGS_PER_DAY, bulk_resyncs_per_day=RESYNCS))
    truth = _truth(world, start, NOW)
    assert len(truth) >= 1000 and max(Counter(u for _, u in truth).values()) >= 30

    siro = SiroApiResource(token=TOKEN, base_url=dense_simulator, initial_backoff_seconds=0.0,
                           requests_per_minute=1_000_000)
    lookback = timedelta(seconds=sensors.DEFAULT_LOOKBACK_SECONDS)
    cursor = SensorCursor(watermark=start + lookback, span=timedelta(seconds=5)).to_json()
    with DagsterInstance.ephemeral() as instance:
        for _ in range(15):
            context = build_sensor_context(instance=instance, cursor=cursor, resources={"siro_api": siro},
                                           definitions=_definitions(siro, tmp_path))
            cursor = sensor.evaluate_tick(context).cursor
            if walks[-1].reached_now:
                break
    per_tick = [(w.pages, w.abandoned_pages) for w in walks]
    print(f"over HTTP: {len(truth)} changes, {len(walks)} ticks (pages, dropped): {per_tick}")
    assert walks[-1].reached_now, per_tick
    minimum = -(-len(truth) // 25) / max(w.pages for w in walks)
    assert len(walks) <= minimum + 3, per_tick
    assert all(dropped <= 0.10 * pages for pages, dropped in per_tick), per_tick
    assert set(requested) == truth and max(requested.values()) == 1
