"""`make dev-webhooks` (scripts/dev_webhooks.py): its simulator sends to its receiver, into
the inbox the pipeline it starts would drain; both stop with the command."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from .test_webhook_receiver import _free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]

# Stands in for `dg dev`: sees the environment the UI would get, waits for a stored event.
PROBE = """
import os, sys, time
from siro_assets.component.project import project_warehouse_path
from siro_assets.webhooks.inbox import SqliteInbox, inbox_path_for
assert os.environ["SIRO_WEBHOOKS"] == "1" and "SIRO_SIMULATOR" not in os.environ, os.environ
print("base", os.environ["SIRO_API_BASE_URL"])
path = inbox_path_for(project_warehouse_path())
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    if path.exists():
        with SqliteInbox(path) as inbox:
            events = inbox.read_after(0, 10)
        if events:
            print("stored", events[0].event_type, events[0].recording_id)
            sys.exit(0)
    time.sleep(0.2)
sys.exit("no webhook stored within 60 s")
"""


def test_dev_webhooks_sends_the_simulators_webhooks_into_the_pipelines_inbox(tmp_path):
    sim_port, hook_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIRO_")}
    env.update(SIRO_DUCKDB_PATH=str(tmp_path / "siro.duckdb"), SIRO_SIMULATOR="1", PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "scripts/dev_webhooks.py", "--sim-port", str(sim_port), "--webhook-port", str(hook_port),
         "--recordings-per-day", "1000", "--backlog-minutes", "60", "--", sys.executable, "-c", PROBE],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"base http://127.0.0.1:{sim_port}" in done.stdout
    assert "stored integrations.recording" in done.stdout
    # Receiver and simulator stopped with the command: nothing listens on their ports.
    for port in (sim_port, hook_port):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
