"""The simulator over real HTTP: the in-thread uvicorn server and the CLI."""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest

from siro_assets.simulator import FixedClock, SimulatorApi, World
from siro_assets.simulator.server import run_in_thread

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 1, 12, tzinfo=timezone.utc)


@pytest.fixture()
def server():
    api = SimulatorApi(World(), FixedClock(NOW), token="fake-server-token", page_size_cap=50)
    base_url, stop = run_in_thread(api)
    try:
        yield api, base_url
    finally:
        stop()


def test_listing_over_http_matches_truth(server) -> None:
    api, base_url = server
    assert base_url.startswith("http://127.0.0.1:")
    rows, cursor = [], None
    with httpx.Client(base_url=base_url, headers={"Authorization": "Bearer fake-server-token"}, timeout=10) as client:
        while True:
            params = {"pageSize": "200", "showCrmLinks": "true", "showSummary": "true", "showEntityExtractions": "true",
                      "showEvaluationScore": "true", "showFollowups": "true"}
            if cursor:
                params["cursor"] = cursor
            r = client.get("/v1/core/recordings", params=params)
            assert r.status_code == 200
            body = r.json()
            assert len(body["data"]) <= 50
            rows.extend(body["data"])
            cursor = body["cursor"]
            if not cursor:
                break
        assert rows == api.world.recordings(NOW)
        ident = client.get("/v1/core/auth/caller-identity").json()
        assert ident["organizationId"] == "org_sim"
        # A base URL with a path prefix (like the real API's) also works.
        r = client.get(f"{base_url}/api-externalApi/v1/core/recordings/{rows[0]['id']}/summaries")
        assert r.status_code == 200 and r.json() == rows[0]["summary"]


def test_auth_and_faults_over_http(server) -> None:
    api, base_url = server
    with httpx.Client(base_url=base_url, timeout=10) as client:
        r = client.get("/v1/core/recordings", headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401 and "error" in r.json()
        assert client.get("/v1/core/recordings").status_code == 401
        headers = {"Authorization": "Bearer fake-server-token"}
        api.script_faults(["disconnect", "429", "truncate"])
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/v1/core/recordings", headers=headers)
        r = client.get("/v1/core/recordings", headers=headers)
        assert r.status_code == 429 and "retry-after" not in r.headers
        r = client.get("/v1/core/recordings", headers=headers)
        assert r.status_code == 200
        with pytest.raises(ValueError):
            r.json()
        assert client.get("/v1/core/recordings", headers=headers).status_code == 200
        assert client.get("/v1/core/recordings/nope", headers=headers).status_code == 404
    assert api.fault_count == {"disconnect": 1, "429": 1, "truncate": 1}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_serves_requests() -> None:
    port = _free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "siro_assets.simulator", "--port", str(port), "--token", "cli-token",
         "--now", "2026-01-08T00:00:00.000Z", "--recordings-per-day", "10"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    try:
        line = ""
        while "listening" not in line:
            line = lines.get(timeout=15)
        assert line.strip() == f"Siro simulator listening on http://127.0.0.1:{port}"
        r = httpx.get(f"http://127.0.0.1:{port}/v1/core/recordings", params={"pageSize": "5"},
                      headers={"Authorization": "Bearer cli-token"}, timeout=10)
        assert r.status_code == 200
        body = r.json()
        assert len(body["data"]) == 5 and body["cursor"]
        assert body["data"][0]["createdAt"] == "2026-01-01T00:00:00.000Z"
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
