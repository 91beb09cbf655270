"""End to end: the simulator as an HTTP server on 127.0.0.1, driven by the `dagster` CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
from dagster import DagsterInstance

from siro_assets.pipeline.partitions import day_start
from siro_assets.simulator import World, WorldConfig
from siro_assets.warehouse.connection import duckdb_connection
from tests.e2e.processes import ROOT, simulator
from tests.support import NOW

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
TOKEN = "e2e-good-token"


@pytest.fixture(scope="module")
def simulator_url():
    with simulator(TOKEN, NOW) as base_url:
        yield base_url


@pytest.fixture
def dagster_env(tmp_path, simulator_url, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    # Create the instance's storage up front: two CLI processes racing to initialise a
    # brand-new DAGSTER_HOME collide in its schema migration ("alembic_version already
    # exists"), which is not what the overlapping-runs test is about.
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with DagsterInstance.get() as instance:
        instance.get_runs(limit=1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIRO_")}
    env.update(
        DAGSTER_HOME=str(home),
        SIRO_API_BASE_URL=simulator_url,
        SIRO_API_TOKEN=TOKEN,
        SIRO_DUCKDB_PATH=str(tmp_path / "e2e.duckdb"),
        SIRO_PARTITIONS_START="2026-01-01",
        # As if the venv were activated, the way the README's commands run.
        VIRTUAL_ENV=str(BIN.parent),
    )
    return env


def _materialize_cmd(partition_range: str) -> list[str]:
    return [str(BIN / "dg"), "launch", "--assets", "siro/recordings*", "--partition-range", partition_range]


def _truth_count(first: date, last: date) -> int:
    return len(World(WorldConfig()).recordings(
        NOW, created_from=day_start(first), created_to=day_start(last + timedelta(days=1))))


def test_partition_range_backfill_through_the_cli(dagster_env):
    result = subprocess.run(_materialize_cmd("2026-03-01...2026-03-03"), env=dagster_env,
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with duckdb_connection(dagster_env["SIRO_DUCKDB_PATH"], read_only=True) as con:
        rows = con.execute("SELECT count(*) FROM siro.recordings").fetchone()[0]
        crm_rows = con.execute("SELECT count(*) FROM siro.recording_crm").fetchone()[0]
        live = con.execute(
            "SELECT count(*) FROM siro.recordings WHERE NOT deleted AND root_data_purged_at IS NULL"
        ).fetchone()[0]
    assert rows == _truth_count(date(2026, 3, 1), date(2026, 3, 3))
    assert crm_rows == live
    assert "SupersessionWarning" not in result.stdout + result.stderr


def test_two_overlapping_cli_runs_share_one_duckdb_file(dagster_env):
    procs = [
        subprocess.Popen(_materialize_cmd(r), env=dagster_env, cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for r in ("2026-03-04...2026-03-05", "2026-03-06...2026-03-07")
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    for proc, output in zip(procs, outputs):
        assert proc.returncode == 0, output[-3000:]
    with duckdb_connection(dagster_env["SIRO_DUCKDB_PATH"], read_only=True) as con:
        rows = con.execute("SELECT count(*) FROM siro.recordings").fetchone()[0]
    assert rows == _truth_count(date(2026, 3, 4), date(2026, 3, 7))


def test_bad_token_fails_fast_without_leaking_it(dagster_env):
    dagster_env["SIRO_API_TOKEN"] = "definitely-wrong-token-123"
    started = time.monotonic()
    result = subprocess.run(_materialize_cmd("2026-03-01...2026-03-01"), env=dagster_env,
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "organization integration token" in output.lower()
    assert "definitely-wrong-token-123" not in output
    assert time.monotonic() - started < 120


def test_definitions_load_without_any_configuration(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIRO_")}
    env["DAGSTER_HOME"] = str(tmp_path)
    env["VIRTUAL_ENV"] = str(BIN.parent)
    result = subprocess.run([str(BIN / "dg"), "check", "defs"],
                            env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "All definitions loaded successfully" in result.stdout + result.stderr


def test_a_warehouse_file_named_siro_duckdb_works_through_the_cli(dagster_env, tmp_path):
    # DuckDB would name this file's catalog `siro`, the name of the schema; the
    # directory adds spaces and non-ASCII letters to the path.
    database = tmp_path / "wärehouse 日本" / "siro.duckdb"
    dagster_env["SIRO_DUCKDB_PATH"] = str(database)
    result = subprocess.run(
        [str(BIN / "dg"), "launch", "--assets", "siro/recordings", "--partition", "2026-03-02"],
        env=dagster_env, cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with duckdb_connection(database, read_only=True) as con:
        rows = con.execute("SELECT count(*) FROM siro.recordings").fetchone()[0]
    assert rows == _truth_count(date(2026, 3, 2), date(2026, 3, 2))
