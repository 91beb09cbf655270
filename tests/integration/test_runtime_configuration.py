"""Configuration resolves when a run starts, not when the code loads (issue 8, item 9)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support import http_simulator

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "runtime-config-test-token"


@pytest.fixture(scope="module")
def server_url():
    with http_simulator(TOKEN) as base_url:
        yield base_url


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIRO_")}
    env.update(PYTHONPATH=str(ROOT), **extra)
    return env


def test_a_code_location_loaded_without_the_token_runs_with_the_runs_token(server_url, tmp_path):
    """Load the definitions with no token, then give the run one: the run must use it."""
    database = tmp_path / "warehouse.duckdb"
    script = textwrap.dedent(
        f"""
        import os
        from dagster import DagsterInstance
        assert "SIRO_API_TOKEN" not in os.environ
        from siro_assets.definitions import defs  # the code server's load, without the token

        os.environ["SIRO_API_TOKEN"] = {TOKEN!r}  # the run's environment has it
        os.environ["SIRO_API_BASE_URL"] = {server_url!r}
        job = defs.resolve_job_def("siro_recordings_job")
        with DagsterInstance.ephemeral() as instance:
            result = job.execute_in_process(partition_key="2026-03-02", instance=instance,
                                            raise_on_error=False)
        print("SUCCESS" if result.success else "FAILURE")
        """
    )
    env = _clean_env(SIRO_DUCKDB_PATH=str(database), DAGSTER_HOME=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 0 and "SUCCESS" in done.stdout, output[-4000:]
    assert TOKEN not in output


def test_the_token_is_always_an_env_var_and_the_budget_sits_beside_the_warehouse(monkeypatch, tmp_path):
    from dagster import EnvVar

    from siro_assets.component.project import project_resources
    from siro_assets.pipeline.resources import RATE_BUDGET_FILE_NAME

    for name in ("SIRO_API_TOKEN", "SIRO_API_BASE_URL", "SIRO_SIMULATOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SIRO_DUCKDB_PATH", str(tmp_path / "w" / "warehouse.duckdb"))
    siro = project_resources()["siro_api"]
    # Bound by name even though it was unset at load: Dagster resolves it when a run starts.
    assert isinstance(siro.token, EnvVar) and siro.token.env_var_name == "SIRO_API_TOKEN"
    assert siro.base_url is None  # looked up when the run starts
    assert Path(siro.rate_budget_file) == (tmp_path / "w" / RATE_BUDGET_FILE_NAME).resolve()
