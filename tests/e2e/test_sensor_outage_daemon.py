"""Item 3 end to end: a real `dagster-daemon` on the repo's dagster.yaml, every run
failing its token check while the clock moves and changes land on the same days; after
the API heals, the table converges to exactly what the API lists.

The simulator serves HTTP from this process on a clock running `SPEED` times faster
than real time (and ahead of it, so the sensor's listing never outruns it); the daemon
loads `compressed_clock_defs`, whose sensor backoff runs on the same compressed clock.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from siro_assets.api_client.timestamps import format_ts
from siro_assets.simulator import SimulatorApi, World, WorldConfig
from siro_assets.simulator.server import run_in_thread
from siro_assets.warehouse.connection import duckdb_connection
from tests.e2e.processes import command_env

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TOKEN = "e2e-outage-token"
SPEED = 120.0  # two simulated minutes per second
WORLD = World(WorldConfig(recordings_per_day=1000))  # dense enough for repeated changes per day
OUTAGE_SECONDS = 20.0
# Wall-clock limits, generous for a loaded 2-core machine: two runs must fail within
# OUTAGE_LIMIT_SECONDS, and the table must be exact CONVERGE_SECONDS after the API heals.
OUTAGE_LIMIT_SECONDS = 90.0
CONVERGE_SECONDS = 75.0
# Runs still in flight once the table is exact get this long to finish: on a loaded
# 2-core machine one run's process start alone takes 15-40 s.
DRAIN_SECONDS = 120.0
IN_FLIGHT = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING,
             DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]


class _CompressedClock:
    """`SPEED` times real time from `start`; `freeze()` stops it (the truth to compare to)."""

    def __init__(self, start: float) -> None:
        self.start, self.frozen = start, None

    def now(self) -> datetime:
        t = self.frozen if self.frozen is not None else self.start + (time.time() - self.start) * SPEED
        return datetime.fromtimestamp(t, timezone.utc)

    def freeze(self) -> datetime:
        self.frozen = self.start + (time.time() - self.start) * SPEED
        return self.now()


class _TokenOutageApi(SimulatorApi):
    """Refuses the token check (`GET /v1/core/auth/caller-identity`, 401) while `down`,
    so every run fails at its first step; the sensor's listing keeps working."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.down = threading.Event()
        self.refused = 0

    def _caller_identity(self, token):
        if self.down.is_set():
            self.refused += 1
            return 401, {"content-type": "application/json"}, b'{"message": "Invalid API token (simulated outage)"}'
        return super()._caller_identity(token)


def _table(database: Path) -> dict[str, datetime] | None:
    if not database.exists():
        return None
    try:
        with duckdb_connection(database, read_only=True, lock_timeout=0.5) as con:
            rows = con.execute("SELECT id, updated_at FROM siro.recordings").fetchall()
    except Exception:  # noqa: BLE001 - locked by a run, or no table yet: look again
        return None
    return {rid: updated.astimezone(timezone.utc) for rid, updated in rows}


def _failed(instance) -> list:
    return instance.get_runs(RunsFilter(job_name="siro_recordings_job", statuses=[DagsterRunStatus.FAILURE]))


def test_an_outage_of_every_run_loses_no_change(tmp_path):
    started = time.time()
    clock = _CompressedClock(started)
    api = _TokenOutageApi(WORLD, clock, token=TOKEN)
    api.down.set()
    base_url, stop = run_in_thread(api)
    database = tmp_path / "warehouse.duckdb"
    env = command_env(tmp_path, SIRO_API_BASE_URL=base_url, SIRO_API_TOKEN=TOKEN,
                      SIRO_DUCKDB_PATH=str(database), SIRO_SENSOR_INTERVAL_SECONDS="5",
                      SIRO_E2E_CLOCK=f"{started},{SPEED}", PYTHONPATH=str(ROOT))
    home = env["DAGSTER_HOME"]
    log = open(tmp_path / "daemon.log", "w")
    daemon = subprocess.Popen(
        [str(BIN / "dagster-daemon"), "run", "-m", "tests.e2e.compressed_clock_defs"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        # The outage: every run (and the daemon's retries of it) fails, while the sensor
        # lists on and the clock moves; it lasts until two runs have failed.
        with DagsterInstance.from_config(str(home)) as instance:
            while time.time() - started < OUTAGE_SECONDS or len(_failed(instance)) < 2:
                assert daemon.poll() is None, (tmp_path / "daemon.log").read_text()[-3000:]
                assert time.time() - started < OUTAGE_LIMIT_SECONDS, f"{len(_failed(instance))} run(s) failed"
                time.sleep(0.5)
        healed = clock.now()
        api.down.clear()
        time.sleep(2)  # changes keep landing after the API healed
        truth_at = clock.freeze()

        # What the API lists now, for every recording changed since the sensor started.
        first = clock.start - 300  # the sensor's first tick lists from (real) now - lookback
        cutoff = datetime.fromtimestamp(first, timezone.utc)
        today = datetime.now(timezone.utc).date()  # the last partition Dagster accepts
        truth = {r["id"]: r["updatedAt"] for r in WORLD.recordings(truth_at, created_from=cutoff - timedelta(days=6))
                 if r["updatedAt"] >= format_ts(cutoff + timedelta(minutes=1)) and r["createdAt"][:10] <= str(today)}
        table, converged = None, None
        healed_after = time.time() - started
        converge_until = time.time() + CONVERGE_SECONDS
        while time.time() < converge_until:
            table = _table(database)
            if table is not None and all(rid in table and format_ts(table[rid]) == u for rid, u in truth.items()):
                converged = time.time() - started
                break
            time.sleep(1)
        # Let the runs in flight finish (the derived steps follow the raw swap), so none
        # is interrupted by the teardown.
        drain_until = time.time() + DRAIN_SECONDS
        with DagsterInstance.from_config(str(home)) as instance:
            while time.time() < drain_until and instance.get_runs(RunsFilter(statuses=IN_FLIGHT)):
                time.sleep(1)
    finally:
        os.killpg(daemon.pid, 15)
        daemon.wait(30)
        log.close()
        stop()

    with DagsterInstance.from_config(str(home)) as instance:
        runs = [r.dagster_run for r in instance.get_run_records(RunsFilter(job_name="siro_recordings_job"))]
    failed = [r for r in runs if r.status == DagsterRunStatus.FAILURE]
    succeeded = [r for r in runs if r.status == DagsterRunStatus.SUCCESS]
    # Changes landed on the same days while every run failed.
    per_day: dict[str, int] = {}
    for r in WORLD.recordings(healed, created_from=cutoff - timedelta(days=6)):
        if r["updatedAt"] >= format_ts(datetime.fromtimestamp(started, timezone.utc)):
            per_day[r["createdAt"][:10]] = per_day.get(r["createdAt"][:10], 0) + 1
    assert max(per_day.values(), default=0) >= 3, per_day
    print(f"{len(runs)} run(s), {len(failed)} failed, {len(succeeded)} succeeded, {api.refused} token check(s) refused; "
          f"{len(truth)} change(s) to check, per day {per_day}; API healed at {healed_after:.0f} s, "
          f"table exact at {converged and round(converged)} s")
    assert len(failed) >= 2 and api.refused >= 2, "the outage did not fail runs"
    unfinished = [(r.run_id[:8], r.status.value) for r in runs
                  if r.status not in (DagsterRunStatus.FAILURE, DagsterRunStatus.SUCCESS)]
    assert succeeded and not unfinished, f"runs not finished {DRAIN_SECONDS:.0f} s after the table was exact: {unfinished}"
    assert len(truth) >= 10, "the clock moved too little to change anything"
    missing = {rid: u for rid, u in truth.items() if table is None or rid not in table or format_ts(table[rid]) != u}
    assert not missing, f"{len(missing)} change(s) never reached the table, e.g. {sorted(missing.items())[:3]}"
    # Exact: no row in the table disagrees with what the API lists.
    listed = {r["id"]: r["updatedAt"] for r in WORLD.recordings(truth_at, created_from=cutoff - timedelta(days=6))}
    assert {rid for rid, u in table.items() if rid in listed and format_ts(u) != listed[rid]} == set()
