"""The e2e process helper: a server starts on a port the OS picks, answers, and is gone
once the block ends; one that cannot start fails with its own output."""

from __future__ import annotations

import os
import time

import httpx
import pytest

from tests.e2e.processes import ROOT, command_env, fake_crms, served, simulator
from tests.support import NOW

pytestmark = pytest.mark.e2e


def test_the_simulator_answers_while_served_and_is_gone_after():
    with simulator("tok", NOW) as base:
        response = httpx.get(f"{base}/v1/recordings", headers={"Authorization": "Bearer wrong"}, timeout=10)
        assert response.status_code == 401
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base}/v1/recordings", timeout=2)


def test_the_fake_crms_answer_while_served():
    with fake_crms() as base:
        assert httpx.get(f"{base}/_journal", timeout=10).json()["salesforce"] == []


def test_a_server_that_cannot_start_fails_with_its_output():
    with pytest.raises(RuntimeError, match="(?s)did not start.*unrecognized arguments"):
        with served("fake_crms", "--no-such-option"):
            pass


def test_the_environment_reaches_the_server_and_its_last_words_are_kept():
    output: list[str] = []
    with simulator("tok", NOW, "--webhook-url", "http://127.0.0.1:9/webhooks/siro",
                   env={"SIRO_WEBHOOK_SECRET": "whsec_dGVzdC1zZWNyZXQtb2YtMzItYnl0ZXMtZm9yLXRoZS1zZW5kZXI="},
                   output=output):
        deadline = time.monotonic() + 30
        while not any("sending webhooks" in line for line in output):  # it found the secret in its environment
            assert time.monotonic() < deadline, output
            time.sleep(0.05)
    assert "webhooks: " in output[-1]  # the summary it prints when stopped


def test_a_command_env_has_its_own_dagster_home_and_only_the_siro_variables_named(tmp_path, monkeypatch):
    monkeypatch.setenv("SIRO_API_TOKEN", "the-callers-own")
    env = command_env(tmp_path, SIRO_DUCKDB_PATH="w.duckdb")
    home = tmp_path / "dagster_home"
    assert env["DAGSTER_HOME"] == str(home)
    assert (home / "dagster.yaml").read_text() == (ROOT / "dagster.yaml").read_text()
    assert {k for k in env if k.startswith("SIRO_")} == {"SIRO_DUCKDB_PATH"}
    assert env["PATH"] == os.environ["PATH"]
