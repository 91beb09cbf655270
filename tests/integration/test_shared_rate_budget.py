"""One request budget per token across processes (issue 8, item 6).

Two runs and a sensor, each in its own process, talk to the simulator over HTTP at the
same time. Together they must stay within the one configured rate, and the simulator
(limiting at that rate) must never answer 429.
"""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest

from siro_assets.simulator import FixedClock, SimulatorApi, World
from siro_assets.simulator.api import FaultConfig
from siro_assets.simulator.server import run_in_thread
from tests.support import NOW, partition_range_tags

TOKEN = "rate-budget-test-token"
RATE_PER_SECOND = 10  # 600 requests/minute: a few seconds of traffic is enough
BURST = 10  # the pacer's default burst
# Server arrival times jitter by a few ms around the slots the pacer hands out.
JITTER_ALLOWANCE = 4
RUN_RANGES = (("2026-03-02", "2026-03-03"), ("2026-03-04", "2026-03-05"))


def _siro(base_url: str, warehouse: str):
    from siro_assets.pipeline.resources import SiroApiResource, rate_budget_path

    return SiroApiResource(
        token=TOKEN,
        base_url=base_url,
        requests_per_minute=RATE_PER_SECOND * 60,
        # Wired as build_resources_from_env does: the budget file beside the warehouse.
        rate_budget_file=str(rate_budget_path(warehouse)),
        page_size=5,  # many small pages, so each run makes a few dozen requests
        initial_backoff_seconds=0.05,
    )


def _run_worker(base_url: str, warehouse: str, first: str, last: str, start, results) -> None:
    from dagster import materialize

    from siro_assets.pipeline.resources import WarehouseResource
    from tests.default_instance import recordings

    resources = {"siro_api": _siro(base_url, warehouse), "siro_warehouse": WarehouseResource(database=warehouse)}
    start.wait()
    result = materialize([recordings], resources=resources, tags=partition_range_tags(first, last))
    metadata = result.asset_materializations_for_node("siro__recordings")[0].metadata
    results.put(("run", result.success, metadata["api_requests"].value))


def _sensor_worker(base_url: str, warehouse: str, runs_done, start, results) -> None:
    from dagster import DagsterInstance, Definitions, build_sensor_context

    from siro_assets.pipeline.resources import WarehouseResource
    from tests.default_instance import recordings, recordings_job
    from tests.support import sensor_with

    recordings_updated_sensor = sensor_with(page_size=5)
    siro = _siro(base_url, warehouse)
    definitions = Definitions(assets=[recordings], jobs=[recordings_job], sensors=[recordings_updated_sensor],
                              resources={"siro_api": siro, "siro_warehouse": WarehouseResource(database=warehouse)})
    ticks = 0
    start.wait()
    with DagsterInstance.ephemeral() as instance:
        # Tick back to back for as long as the runs fetch: far more often than a daemon would.
        while not runs_done.is_set() or ticks == 0:
            context = build_sensor_context(instance=instance, resources={"siro_api": siro},
                                           definitions=definitions)
            recordings_updated_sensor.evaluate_tick(context)
            ticks += 1
    results.put(("sensor", True, ticks))


def _max_excess(arrivals: list[float]) -> float:
    """How far the busiest window of the arrivals exceeds BURST + RATE x its length."""
    arrivals = sorted(arrivals)
    worst = float("-inf")
    for i, t_first in enumerate(arrivals):
        for j in range(i, len(arrivals)):
            worst = max(worst, (j - i + 1) - (BURST + RATE_PER_SECOND * (arrivals[j] - t_first)))
    return worst


@pytest.fixture
def limited_server():
    # The simulator limits per 60 s of its `monotonic` clock; compressing that clock 60x
    # turns its per-minute window into a one-second window, so a few seconds of traffic
    # exercise it. One second at our rate allows RATE + BURST requests.
    api = SimulatorApi(
        World(), FixedClock(NOW), token=TOKEN, page_size_cap=5,
        faults=FaultConfig(rate_limit_per_minute=RATE_PER_SECOND + BURST + JITTER_ALLOWANCE),
        monotonic=lambda: time.monotonic() * 60,
    )
    arrivals: list[float] = []
    handle = api.handle

    def recording_handle(*args, **kwargs):
        arrivals.append(time.monotonic())
        return handle(*args, **kwargs)

    api.handle = recording_handle
    base_url, stop = run_in_thread(api)
    try:
        yield api, base_url, arrivals
    finally:
        stop()


def test_two_runs_and_a_sensor_in_separate_processes_share_one_budget(limited_server, tmp_path: Path):
    api, base_url, arrivals = limited_server
    warehouse = str(tmp_path / "warehouse.duckdb")
    mp = multiprocessing.get_context("spawn")
    # Every process imports Dagster and builds its resources before any request, then all
    # start at once, so the three overlap fully.
    start, runs_done, results = mp.Barrier(3, timeout=120), mp.Event(), mp.Queue()
    runs = [mp.Process(target=_run_worker, args=(base_url, warehouse, first, last, start, results))
            for first, last in RUN_RANGES]
    sensor = mp.Process(target=_sensor_worker, args=(base_url, warehouse, runs_done, start, results))
    for proc in (*runs, sensor):
        proc.start()
    try:
        for proc in runs:
            proc.join(timeout=120)
        runs_done.set()
        sensor.join(timeout=60)
    finally:
        for proc in (*runs, sensor):
            if proc.is_alive():
                proc.kill()
    outcomes = [results.get(timeout=5) for _ in range(3)]
    assert all(proc.exitcode == 0 for proc in (*runs, sensor)), outcomes
    assert all(ok for _, ok, _ in outcomes), outcomes
    run_requests = sum(n for kind, _, n in outcomes if kind == "run")
    sensor_ticks = next(n for kind, _, n in outcomes if kind == "sensor")
    assert run_requests >= 30 and sensor_ticks >= 5, outcomes  # enough traffic to matter
    assert api.rate_limited_count == 0, f"{api.rate_limited_count} requests got 429"
    assert _max_excess(arrivals) <= JITTER_ALLOWANCE, (len(arrivals), _max_excess(arrivals))
