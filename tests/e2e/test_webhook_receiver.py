"""End to end: `python -m siro_assets.webhooks` and the simulator's sender as real processes on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from standardwebhooks import Webhook

from siro_assets.simulator import World, WorldConfig
from siro_assets.simulator.webhook_sender import DeliveryFaults, webhook_messages
from siro_assets.webhooks.inbox import SqliteInbox, inbox_path_for
from tests.e2e.processes import simulator

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SECRET = "whsec_c2lyby1lMmUtd2ViaG9vay1zZWNyZXQtMzItYnl0ZXMh"
WRONG = "whsec_bm90IHRoZSBlbmRwb2ludCdzIHNlY3JldCwgZm9yZ2VkIQ=="
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)
SINCE = NOW - timedelta(hours=12)
START_TIMEOUT = 90.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def signed(payload: dict, msg_id: str, *, secret: str = SECRET, at: datetime | None = None) -> tuple[bytes, dict]:
    body = json.dumps(payload)
    at = at or datetime.now(timezone.utc)
    return body.encode(), {
        "content-type": "application/json",
        "svix-id": msg_id,
        "svix-timestamp": str(int(at.timestamp())),
        "svix-signature": Webhook(secret).sign(msg_id, at, body),
    }


def event(n: int) -> dict:
    return {"recordingId": f"rec_{n}", "siroUserId": "usr_1", "recordingProcessed": True,
            "recordingLinked": False, "eventType": "integrations.recordingProcessed"}


class Receiver:
    """The receiver process, configured only through the pipeline's environment variables."""

    def __init__(self, tmp_path: Path, *, port: int | None = None, log_level: str = "info",
                 args: tuple[str, ...] = (), env: dict[str, str] | None = None) -> None:
        self.port = port or _free_port()
        self.warehouse = tmp_path / "data" / "siro.duckdb"
        self.log_path = tmp_path / f"receiver-{self.port}.log"
        env = {**os.environ, "SIRO_DUCKDB_PATH": str(self.warehouse), "SIRO_WEBHOOK_SECRET": SECRET, **(env or {})}
        env.pop("SIRO_SIMULATOR", None)
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "siro_assets.webhooks", "--host", "127.0.0.1", "--port", str(self.port),
             "--log-level", log_level, *args],
            stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT, env=env,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self) -> "Receiver":
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"receiver exited: {self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("receiver did not start")

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def inbox(self) -> SqliteInbox:
        return SqliteInbox(inbox_path_for(self.warehouse))

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@pytest.fixture
def receiver(tmp_path):
    r = Receiver(tmp_path)
    try:
        yield r.wait_ready()
    finally:
        r.stop()


def _forgeries(n: int):
    """Request n of a rotating mix of every refusal the receiver must make."""
    body, headers = signed(event(n), f"msg_forged_{n}")
    kind = n % 8
    if kind == 0:
        return "POST", body, {**headers, "svix-signature": "v1,Zm9yZ2VkIHNpZ25hdHVyZQ=="}
    if kind == 1:
        return ("POST", *signed(event(n), f"msg_forged_{n}", secret=WRONG))
    if kind == 2:
        return ("POST", *signed(event(n), f"msg_forged_{n}", at=datetime.now(timezone.utc) - timedelta(minutes=6)))
    if kind == 3:
        return "POST", body, {k: v for k, v in headers.items() if k != "svix-signature"}
    if kind == 4:
        return "POST", body, {**headers, "content-type": "text/plain"}
    if kind == 5:
        big = b'{"recordingId":"' + b"x" * (300 * 1024) + b'"}'
        return "POST", big, signed(event(n), f"msg_forged_{n}")[1]
    if kind == 6:
        return "GET", body, headers
    return "POST", b"not json at all", {**signed(event(n), "x")[1], "svix-id": f"msg_forged_{n}"}


def _flood(client: httpx.Client, url: str, start: int, count: int) -> Counter:
    statuses: Counter = Counter()
    for n in range(start, start + count):
        method, body, headers = _forgeries(n)
        statuses[client.request(method, f"{url}/webhooks/siro", content=body, headers=headers).status_code] += 1
    return statuses


def test_thousands_of_forged_requests_leave_the_inbox_empty_and_memory_flat(receiver):
    with httpx.Client(timeout=10) as client:
        _flood(client, receiver.url, 0, 400)  # warm up: imports, buffers, allocator arenas
        before = receiver.rss_kib()
        statuses = _flood(client, receiver.url, 400, 4000)
        after = receiver.rss_kib()
    # kinds 0-3 forged/wrong secret/stale/missing header, 4 text/plain, 5 oversized, 6 GET,
    # 7 a non-JSON body with a signature that does not match it.
    assert statuses == Counter({401: 2500, 415: 500, 413: 500, 405: 500})
    print(f"receiver RSS {before} KiB -> {after} KiB after 4000 forged requests")
    assert after - before < 8 * 1024, f"RSS grew {after - before} KiB over 4000 forged requests"
    with receiver.inbox() as inbox:
        assert inbox.count() == 0
    log = receiver.log()
    assert "refused (401)" in log and SECRET.removeprefix("whsec_") not in log
    # Still serving: a genuine event right after the flood is stored.
    body, headers = signed(event(1), "msg_genuine")
    assert httpx.post(f"{receiver.url}/webhooks/siro", content=body, headers=headers).json() == {"status": "stored"}


def test_a_receiver_killed_right_after_its_2xx_has_every_acknowledged_event(tmp_path):
    receiver = Receiver(tmp_path, log_level="debug").wait_ready()
    try:
        with httpx.Client(timeout=10) as client:
            for n in range(20):
                body, headers = signed(event(n), f"msg_{n}")
                assert client.post(f"{receiver.url}/webhooks/siro", content=body, headers=headers).status_code == 200
        os.kill(receiver.proc.pid, signal.SIGKILL)  # no shutdown, no flush: the 2xx must already be durable
        receiver.proc.wait(timeout=10)
        with receiver.inbox() as inbox:
            assert [e.message_id for e in inbox.read_after(0, 100)] == [f"msg_{n}" for n in range(20)]
        assert SECRET.removeprefix("whsec_") not in receiver.log()
    finally:
        receiver.stop()


def test_the_simulator_delivers_each_event_once_through_duplicates_reordering_and_a_late_receiver(tmp_path):
    port = _free_port()
    said: list[str] = []
    receiver = None
    try:
        with simulator("sim-token", NOW, "--webhook-url", f"http://127.0.0.1:{port}/webhooks/siro",
                       "--webhook-since", SINCE.isoformat(), "--webhook-seed", "5", "--webhook-retry-scale", "0.001",
                       env={"SIRO_WEBHOOK_SECRET": SECRET}, output=said, timeout=START_TIMEOUT):
            deadline = time.monotonic() + START_TIMEOUT
            while not any("sending webhooks" in line for line in said):
                assert time.monotonic() < deadline, "".join(said)
                time.sleep(0.1)
            # The sender has started while nobody listens on the port: its first attempts fail.
            receiver = Receiver(tmp_path, port=port).wait_ready()
            expected = webhook_messages(World(WorldConfig(seed=7, recordings_per_day=40)), SINCE, NOW)
            assert len(expected) > 20
            deadline = time.monotonic() + START_TIMEOUT
            with receiver.inbox() as inbox:
                while inbox.count() < len(expected) and time.monotonic() < deadline:
                    time.sleep(0.2)
                stored = inbox.read_after(0, 10_000)
            assert sorted(e.message_id for e in stored) == sorted(m.msg_id for m in expected)
            assert [e.message_id for e in stored] != [m.msg_id for m in expected], "some arrived out of order"
            twice = sum(len(DeliveryFaults(seed=5).first_sends(m.msg_id)) - 1 for m in expected)
            assert twice > 0
            deadline = time.monotonic() + 30
            while receiver.log().count(" duplicate: ") < twice and time.monotonic() < deadline:
                time.sleep(0.2)
            assert receiver.log().count(" duplicate: ") >= twice
    finally:
        if receiver is not None:
            receiver.stop()
    sim_log = "".join(said)
    summary = [line for line in sim_log.splitlines() if line.startswith("webhooks:")]
    assert summary, sim_log
    counts = dict((v, int(k)) for k, v in (part.strip().split(" ", 1) for part in summary[0][len("webhooks:"):].split(",")))
    assert counts["messages"] == len(expected) and counts["given up"] == 0
    assert counts["attempts"] > counts["acknowledged"], "the late receiver made the sender retry"
    assert SECRET.removeprefix("whsec_") not in sim_log + receiver.log()


EAST = "whsec_ZWFzdCBvcmdhbml6YXRpb24ncyBzaWduaW5nIHNlY3JldCE="
WEST = "whsec_d2VzdCBvcmdhbml6YXRpb24ncyBzaWduaW5nIHNlY3JldCE="


def two_org_project(root: Path) -> Path:
    """A project (not installed) holding three instances: east and west with webhooks on,
    each with its own secret variable and inbox, and north with webhooks off."""
    (root / "two_orgs" / "defs").mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        '[tool.dg]\ndirectory_type = "project"\n\n[tool.dg.project]\nroot_module = "two_orgs"\n'
        'defs_module = "two_orgs.defs"\n')
    (root / "two_orgs" / "__init__.py").write_text("")
    instances = {
        "east": f"  warehouse: {{path: {root / 'east' / 'east.duckdb'}}}\n"
                "  webhooks: {enabled: true, secret_env: EAST_WEBHOOK_SECRET}\n",
        # The token variable is named but unset: loading must never need it.
        "west": f"  api: {{token_env: WEST_TOKEN_NEVER_SET}}\n  warehouse: {{path: {root / 'west.duckdb'}}}\n"
                f"  webhooks: {{enabled: true, inbox_path: {root / 'inboxes' / 'west.sqlite'}}}\n",
        "north": f"  warehouse: {{path: {root / 'north.duckdb'}}}\n",
    }
    for prefix, attributes in instances.items():
        (root / "two_orgs" / "defs" / prefix).mkdir()
        (root / "two_orgs" / "defs" / prefix / "defs.yaml").write_text(
            f"type: siro_assets.SiroComponent\nattributes:\n  key_prefix: {prefix}\n{attributes}")
    return root


def test_without_endpoints_the_receiver_serves_every_instance_of_the_project(tmp_path):
    project = two_org_project(tmp_path / "project")
    env = {"EAST_WEBHOOK_SECRET": EAST, "SIRO_WEST_WEBHOOK_SECRET": WEST}
    receiver = Receiver(tmp_path, args=("--project", str(project)), env=env).wait_ready()
    try:
        with httpx.Client(timeout=10) as client:
            def post(prefix: str, secret: str, n: int) -> int:
                body, headers = signed(event(n), f"msg_{prefix}_{n}", secret=secret)
                return client.post(f"{receiver.url}/webhooks/{prefix}", content=body, headers=headers).status_code

            assert post("east", EAST, 1) == 200 and post("west", WEST, 2) == 200
            # Each path checks its own instance's secret only.
            assert post("east", WEST, 3) == 401 and post("west", EAST, 4) == 401
            # north has webhooks off and no secret set; siro is not an instance of this project.
            assert post("north", EAST, 5) == 404 and post("siro", SECRET, 6) == 404
    finally:
        receiver.stop()
    with SqliteInbox(inbox_path_for(project / "east" / "east.duckdb")) as east:
        assert [(e.endpoint, e.recording_id) for e in east.read_after(0, 10)] == [("east", "rec_1")]
    with SqliteInbox(project / "inboxes" / "west.sqlite") as west:
        assert [(e.endpoint, e.recording_id) for e in west.read_after(0, 10)] == [("west", "rec_2")]
    log = receiver.log()
    assert "POST /webhooks/east (secret from EAST_WEBHOOK_SECRET)" in log
    assert "POST /webhooks/west (secret from SIRO_WEST_WEBHOOK_SECRET)" in log
    assert EAST.removeprefix("whsec_") not in log and WEST.removeprefix("whsec_") not in log


def test_an_enabled_instance_without_its_secret_stops_the_receiver_naming_the_variable(tmp_path):
    project = two_org_project(tmp_path / "project")
    env = {**os.environ, "EAST_WEBHOOK_SECRET": EAST}
    env.pop("SIRO_WEST_WEBHOOK_SECRET", None)
    done = subprocess.run([sys.executable, "-m", "siro_assets.webhooks", "--project", str(project)],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=START_TIMEOUT)
    assert done.returncode == 2
    assert "SIRO_WEST_WEBHOOK_SECRET" in done.stderr and "/webhooks/west" in done.stderr
    assert EAST.removeprefix("whsec_") not in done.stderr + done.stdout
