"""Every README command works with every README variable set (issue 8, item 9).

One combined run per variable group: the simulator group (`make demo`'s script, then
`dg check defs`) and the real-API group (`dg launch` against the
simulator serving HTTP). `make dev` is `dg dev`, which loads what `dg check defs` loads.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from siro_assets.warehouse.connection import duckdb_connection
from tests.e2e.processes import command_env
from tests.support import http_simulator

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TOKEN = "readme-commands-test-token"


def _env(tmp_path: Path, **variables: str) -> dict[str, str]:
    # As the Makefile runs them: DAGSTER_HOME set, the venv activated.
    return command_env(tmp_path, VIRTUAL_ENV=str(BIN.parent), **variables)


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(command)}\n{output[-4000:]}"
    return done


def _output(command: list[str], env: dict[str, str]) -> str:
    done = _run(command, env)
    return done.stdout + done.stderr


def _rows(database: Path) -> int:
    with duckdb_connection(database, read_only=True) as con:
        return con.execute("SELECT count(*) FROM siro.recordings").fetchone()[0]


def test_simulator_group_make_demo_and_dg_commands(tmp_path):
    database = tmp_path / "my data" / "demo.duckdb"
    env = _env(
        tmp_path,
        SIRO_SIMULATOR="1",
        SIRO_DUCKDB_PATH=str(database),
        SIRO_PARTITIONS_START=(date.today() - timedelta(days=10)).isoformat(),
        SIRO_SENSOR_INTERVAL_SECONDS="30",
        SIRO_DEMO_DAYS="1",
    )
    output = _output([sys.executable, "scripts/demo.py"], env)  # what `make demo` runs
    assert str(database) in output
    assert _rows(database) > 0
    assert "All definitions loaded successfully" in _output([str(BIN / "dg"), "check", "defs"], env)


@pytest.fixture(scope="module")
def server_url():
    with http_simulator(TOKEN) as base_url:
        yield base_url


def test_real_api_group_dg_launch_and_dg_check(tmp_path, server_url):
    database = tmp_path / "real.duckdb"
    env = _env(
        tmp_path,
        SIRO_API_TOKEN=TOKEN,
        SIRO_API_BASE_URL=server_url,
        SIRO_DUCKDB_PATH=str(database),
        SIRO_PARTITIONS_START="2026-02-01",
        SIRO_SENSOR_INTERVAL_SECONDS="30",
    )
    assert "All definitions loaded successfully" in _output([str(BIN / "dg"), "check", "defs"], env)
    output = _output([str(BIN / "dg"), "launch", "--assets", "siro/recordings*", "--partition", "2026-03-02"], env)
    assert TOKEN not in output
    assert _rows(database) > 0
    _run([str(BIN / "dg"), "launch", "--job", "siro_warehouse_audit_job"], env)
    with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        audits = instance.get_runs(RunsFilter(job_name="siro_warehouse_audit_job"))
        assert [run.status for run in audits] == [DagsterRunStatus.SUCCESS]
        checked = instance.get_records_for_run(audits[0].run_id,
                                               of_type=DagsterEventType.ASSET_CHECK_EVALUATION).records
    assert checked and all(r.event_log_entry.dagster_event.event_specific_data.passed for r in checked)
    # The request budget shared by every process lives beside the warehouse.
    assert (tmp_path / ".siro-rate-budget.sqlite").exists()
