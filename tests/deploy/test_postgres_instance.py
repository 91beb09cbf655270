"""The production instance (deploy/dagster.yaml) on a real PostgreSQL, with the real daemon.

Topology as in deploy/docker-compose.yml: a `dagster code-server` serving the project,
`dagster-daemon` dequeuing runs, both reading the production dagster.yaml. Two
partitions are launched into the queue; their warehouse-writing steps must take turns (the
`siro_duckdb` pool, op granularity), and runs, materializations and check results must be readable back
from PostgreSQL.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import psycopg2
import pytest
from dagster import AssetKey, AssetRecordsFilter, DagsterInstance, DagsterRunStatus, RunsFilter

from siro_assets.pipeline.partitions import day_start
from siro_assets.pipeline.resources import WAREHOUSE_POOL
from siro_assets.simulator import World, WorldConfig
from siro_assets.transforms import DERIVED_TABLES
from siro_assets.warehouse.connection import duckdb_connection

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DAYS = ("2026-03-01", "2026-03-02")
RECORDINGS = AssetKey(["siro", "recordings"])
# The steps in the `siro_duckdb` pool: one per derived table.
POOLED_STEPS = {f"siro__{table.name}" for table in DERIVED_TABLES}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _wait_for_port(port: int, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("code server exited; see code-server.log in the test's tmp dir")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("code server did not start listening")


@pytest.fixture
def deployment_env(tmp_path, postgres_server, monkeypatch):
    """DAGSTER_HOME holding the production dagster.yaml, wired to the cluster and the simulator."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIRO_", "DAGSTER_"))}
    env.update(postgres_server.dagster_env())
    for name, value in postgres_server.dagster_env().items():
        monkeypatch.setenv(name, value)  # this process reads the instance too
    env.update(
        DAGSTER_HOME=str(home),
        PYTHONPATH=str(ROOT),
        SIRO_SIMULATOR="1",
        # Not `siro.duckdb`: DuckDB names a file's catalog after its stem, and a catalog
        # `siro` makes every reference to the schema `siro` ambiguous.
        SIRO_DUCKDB_PATH=str(tmp_path / "warehouse" / "siro_warehouse.duckdb"),
        SIRO_PARTITIONS_START="2026-01-01",
    )
    (tmp_path / "warehouse").mkdir()
    return env


@pytest.fixture
def code_server(deployment_env, tmp_path):
    """`dagster code-server start` for the project, as the compose file runs it."""
    port = _free_port()
    # Output to a file, not a pipe nobody drains: the runs inherit the code server's
    # stdout, and a full pipe would block them mid-run.
    log = (tmp_path / "code-server.log").open("w")
    proc = subprocess.Popen(
        [str(BIN / "dagster"), "code-server", "start", "-h", "127.0.0.1", "-p", str(port),
         "-m", "siro_assets.definitions"],
        env=deployment_env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True,
        # Its own process group: the proxy's `dagster api grpc` child (and any run still
        # going) must not outlive the test.
        start_new_session=True,
    )
    try:
        _wait_for_port(port, proc, timeout=60)
        workspace = Path(deployment_env["DAGSTER_HOME"]) / "workspace.yaml"
        workspace.write_text(
            f"load_from:\n  - grpc_server:\n      host: 127.0.0.1\n      port: {port}\n"
            "      location_name: siro_assets\n"
        )
        yield port, workspace
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        finally:
            _kill_group(proc.pid)
            log.close()


def _cli_all(commands: list[list[str]], env: dict[str, str]) -> None:
    """Run several `dagster` CLI commands side by side; each must succeed."""
    procs = [subprocess.Popen([str(BIN / "dagster"), *argv], env=env, cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for argv in commands]
    for argv, proc in zip(commands, procs):
        output = proc.communicate(timeout=180)[0]
        assert proc.returncode == 0, f"dagster {' '.join(argv[:2])}: {output[-3000:]}"


def _wait_for_runs(instance: DagsterInstance, run_ids: list[str], timeout: float) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = [instance.get_run_by_id(run_id) for run_id in run_ids]
        if all(run.is_finished for run in runs):
            return runs
        time.sleep(0.5)
    tails = {
        run.run_id: [entry.message for entry in instance.all_logs(run.run_id)][-8:]
        for run in runs if not run.is_finished
    }
    raise AssertionError(f"runs did not finish: {[(r.run_id, r.status) for r in runs]}; last events: {tails}")


def _failure_report(instance: DagsterInstance, run_ids: list[str]) -> str:
    lines = []
    for run_id in run_ids:
        for entry in instance.all_logs(run_id):
            if entry.is_dagster_event and entry.dagster_event.is_failure:
                lines.append(f"{run_id}: {entry.dagster_event.message or ''} {entry.dagster_event.event_specific_data}")
    return "\n".join(lines)[-4000:] + "\n"


def _truth_count(day: str) -> int:
    """Recordings the simulated world holds for `day` (the resource's default world)."""
    first = date.fromisoformat(day)
    world = World(WorldConfig())
    # The deployment's simulator runs on the wall clock; these March days are long complete.
    return len(world.recordings(datetime.now(timezone.utc), created_from=day_start(first),
                                created_to=day_start(first + timedelta(days=1))))


def test_queued_runs_materialize_through_the_daemon_into_postgres_storage(
    deployment_env, code_server, postgres_server
):
    _port, workspace = code_server
    # Creating the instance creates its schema in PostgreSQL once, before CLI processes
    # that would otherwise race to migrate a brand-new database.
    instance = DagsterInstance.from_config(deployment_env["DAGSTER_HOME"])
    # What the deployment's one-shot init does (`dagster instance concurrency set
    # siro_duckdb 1` in compose's `init`): the pool exists with its limit before the first
    # run is queued. Left to `default_limit` alone, the daemon creates the pool in the same
    # pass that checks it, and a burst of runs queued before that pass all start together.
    instance.event_log_storage.set_concurrency_slots(WAREHOUSE_POOL, 1)

    # The workspace file names the location as the daemon knows it (siro_assets).
    workspace_args = ["-w", str(workspace)]
    run_ids = [str(uuid.uuid4()) for _ in DAYS]
    commands = [
        # The sensor is on by default and would add runs for today's changes; this test is
        # about the queue, so it runs only the runs it launches.
        ["sensor", "stop", "recordings_updated_sensor", *workspace_args],
        # `dagster job launch` submits to the instance's run coordinator: the run waits
        # QUEUED in PostgreSQL until the daemon starts it.
        *(["job", "launch", "-j", "siro_recordings_job", "--run-id", run_id,
           "--tags", json.dumps({"dagster/partition": day}), *workspace_args]
          for run_id, day in zip(run_ids, DAYS)),
    ]
    _cli_all(commands, deployment_env)

    try:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert {instance.get_run_by_id(r).status for r in run_ids} == {DagsterRunStatus.QUEUED}

        daemon_log = Path(deployment_env["DAGSTER_HOME"]) / "daemon.log"
        with daemon_log.open("w") as out:
            daemon = subprocess.Popen(
                [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)],
                env=deployment_env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, text=True,
            )
            try:
                runs = _wait_for_runs(instance, run_ids, timeout=150)
            finally:
                daemon.terminate()
                daemon.wait(timeout=60)
        daemon_output = daemon_log.read_text()
        assert [r.status for r in runs] == [DagsterRunStatus.SUCCESS] * 2, (
            _failure_report(instance, run_ids) + daemon_output[-3000:]
        )

        # One DuckDB writer at a time, held only while writing: the runs may overlap, but
        # their `siro_duckdb` pool steps (the derived rebuilds) never ran at the same time.
        records = instance.get_run_records(RunsFilter(run_ids=run_ids))
        assert len(records) == 2
        pooled = sorted(
            (stat.start_time, stat.end_time, run_id)
            for run_id in run_ids
            for stat in instance.get_run_step_stats(run_id)
            if stat.step_key in POOLED_STEPS
        )
        assert {run_id for _, _, run_id in pooled} == set(run_ids)
        for (_, first_end, first_run), (second_start, _, second_run) in zip(pooled, pooled[1:]):
            if first_run != second_run:
                assert first_end <= second_start

        assert instance.get_materialized_partitions(RECORDINGS) >= set(DAYS)
        for day in DAYS:
            (record,) = instance.fetch_materializations(
                AssetRecordsFilter(asset_key=RECORDINGS, asset_partitions=[day]), limit=1
            ).records
            assert record.run_id == run_ids[DAYS.index(day)]
            assert record.asset_materialization.metadata["dagster/row_count"].value == _truth_count(day)
    finally:
        instance.dispose()

    # The same facts, straight from PostgreSQL's tables.
    with psycopg2.connect(host=postgres_server.host, port=postgres_server.port,
                          user=postgres_server.user, password=postgres_server.password,
                          dbname=postgres_server.database) as con, con.cursor() as cur:
        cur.execute("SELECT run_id, status FROM runs WHERE run_id = ANY(%s) ORDER BY run_id", (run_ids,))
        assert cur.fetchall() == [(run_id, "SUCCESS") for run_id in sorted(run_ids)]
        cur.execute(
            "SELECT partition, count(*) FROM event_logs WHERE dagster_event_type = "
            "'ASSET_MATERIALIZATION' AND asset_key = %s GROUP BY partition ORDER BY partition",
            (RECORDINGS.to_string(),),
        )
        assert cur.fetchall() == [(day, 1) for day in DAYS]

    with duckdb_connection(deployment_env["SIRO_DUCKDB_PATH"], read_only=True) as con:
        counts = dict(con.execute(
            "SELECT strftime(partition_date, '%Y-%m-%d'), count(*) FROM siro.recordings GROUP BY 1"
        ).fetchall())
    assert counts == {day: _truth_count(day) for day in DAYS}
