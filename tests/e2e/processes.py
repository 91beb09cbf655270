"""The Siro simulator and the fake CRMs as processes of their own, for the e2e tests.

Each is started on a port the OS picks (`--port 0`: no race for a "free" port), is
waited for until it says where it listens and that address accepts connections, and is
stopped on exit. Its output is drained all along, so a chatty server never blocks on a
full pipe, and is quoted when it fails to start.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path

from siro_assets.api_client.timestamps import format_ts
from siro_assets.crm import Routing
from siro_assets.crm.config import HttpSettings, HubSpotSettings, SalesforceSettings

ROOT = Path(__file__).resolve().parents[2]
_ADDRESS = re.compile(r"http://127\.0\.0\.1:(\d+)")


@contextmanager
def served(module: str, *args: str, timeout: float = 60.0, env: dict[str, str] | None = None,
           output: list[str] | None = None) -> Iterator[str]:
    """`python -m <module> --port 0 <args>` from the repository root; yields its base URL.

    `env` is added to this process's environment. The server's output lines are appended
    to `output` as they come; once the block has ended they are all there, the last
    words it said on stopping included.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "--port", "0", *args], cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    output = [] if output is None else output
    bound: list[int] = []
    said = threading.Event()

    def read() -> None:
        # A server prints its address once it is bound; before that, only errors.
        for line in proc.stdout:
            output.append(line)
            if not bound and (match := _ADDRESS.search(line)):
                bound.append(int(match.group(1)))
                said.set()
        said.set()

    reader = threading.Thread(target=read, name=f"{module} output", daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + timeout
        if not said.wait(timeout) or not bound:
            raise RuntimeError(f"{module} did not start (exit {proc.poll()}): {''.join(output)[-3000:]}")
        _wait_for_connection(proc, bound[0], deadline)
        yield f"http://127.0.0.1:{bound[0]}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(timeout=10)  # the pipe closed with the process: the rest is read


def _wait_for_connection(proc: subprocess.Popen, port: int, deadline: float) -> None:
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{proc.args[2]} accepts no connection on port {port} (exit {proc.poll()})")


def simulator(token: str, now: datetime, *args: str, **options) -> AbstractContextManager[str]:
    """The Siro simulator at the frozen clock `now` (more CLI options in `args`; `env`,
    `output` as for `served`)."""
    return served("siro_assets.simulator", "--token", token, "--now", format_ts(now), *args, **options)


def fake_crms(*args: str) -> AbstractContextManager[str]:
    """The fake Salesforce, HubSpot and HTTP CRMs (CLI options such as `--fault-rate` in `args`)."""
    return served("fake_crms", *args)


def fake_crm_routing(base: str, *, http: bool = False, **settings) -> Routing:
    """Routing of `ic_sf` and `ic_hs` (and `ic_http` with `http`) to the fake CRMs at
    `base`, with their credentials; `settings` (`max_attempts`, `batch_size`, ...) apply to each."""
    connections = {
        "ic_sf": SalesforceSettings(login_url=f"{base}/salesforce", client_id="fake-client-id",
                                    client_secret="fake-client-secret", **settings),
        "ic_hs": HubSpotSettings(base_url=f"{base}/hubspot", token="fake-hubspot-token",
                                 rate_limit_window_seconds=0.01, requests_per_second=1000, **settings),
    }
    if http:
        connections["ic_http"] = HttpSettings(url=f"{base}/http", token="fake-http-token", **settings)
    return Routing(connections=connections)


def command_env(tmp: Path, **variables: str) -> dict[str, str]:
    """The environment for a Dagster command a test starts: this process's without its
    `SIRO_*` variables (the test names those it means), `DAGSTER_HOME` a fresh
    `tmp/dagster_home` holding the repository's dagster.yaml, plus `variables`."""
    home = tmp / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIRO_")}
    env.update(DAGSTER_HOME=str(home), **variables)
    return env
