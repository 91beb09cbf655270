"""A real Dagster code server, webserver and daemon on 127.0.0.1, as deployed, for the UI tests.

Both run against the in-process simulator (SIRO_SIMULATOR=1) with a throwaway DAGSTER_HOME
(the repo's dagster.yaml) and DuckDB file. Every wait is bounded; a failure names what it
waited for and carries the tail of both processes' logs.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

STARTUP_TIMEOUT = 120.0
BACKFILL_TIMEOUT = 240.0
LOG_TAIL = 4000


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class UiError(AssertionError):
    """A bounded wait ran out or the server answered with an error; carries the server logs."""


class DagsterUi:
    """`dagster-webserver` (and, once started, `dagster-daemon`) on a temp instance."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.home = workdir / "dagster_home"
        self.home.mkdir(parents=True)
        shutil.copy(ROOT / "dagster.yaml", self.home / "dagster.yaml")
        # The "join the community" dialog would cover the page in the browser test; Dagster
        # skips it once this file exists.
        (self.home / ".nux").mkdir()
        (self.home / ".nux" / "nux.yaml").write_text("seen: 1\n")
        self.warehouse = workdir / "warehouse.duckdb"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.code_port = free_port()
        self.workspace = workdir / "workspace.yaml"
        self.workspace.write_text(
            "load_from:\n  - grpc_server:\n      host: 127.0.0.1\n"
            f"      port: {self.code_port}\n      location_name: siro_assets\n"
        )
        self._procs: dict[str, subprocess.Popen] = {}
        self._http = httpx.Client(timeout=60)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SIRO_", "DAGSTER_"))}
        env.update(
            DAGSTER_HOME=str(self.home),
            SIRO_SIMULATOR="1",
            SIRO_DUCKDB_PATH=str(self.warehouse),
            SIRO_PARTITIONS_START="2026-01-01",
            PYTHONPATH=str(ROOT),
            VIRTUAL_ENV=str(BIN.parent),
        )
        self.env = env

    # --- processes -----------------------------------------------------------------------

    def _start(self, name: str, command: list[str]) -> None:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        # A session of its own, so stopping it also stops the code server it spawns.
        self._procs[name] = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()

    def start_webserver(self) -> None:
        """Start the code server, then the webserver on it; wait until the location is loaded.

        One gRPC code server (as in a deployment) serves the webserver, the daemon and run
        launches, so the definitions are loaded once instead of once per process.
        """
        self._start(
            "code_server",
            [str(BIN / "dagster"), "api", "grpc", "-m", "siro_assets.definitions", "-h", "127.0.0.1",
             "-p", str(self.code_port), "--location-name", "siro_assets", "-d", str(ROOT)],
        )
        self.wait_for("the code server to listen", self._code_server_listening, STARTUP_TIMEOUT)
        self._start(
            "webserver",
            [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(self.port), "-w", str(self.workspace)],
        )
        self.wait_for("the webserver to load the code location", self._location_loaded, STARTUP_TIMEOUT)

    def start_daemon(self) -> None:
        """Start the daemon (schedules, sensors, backfills, the run queue)."""
        self._start("daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(self.workspace)])

    def _code_server_listening(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.code_port), timeout=1).close()
        except OSError:
            return False
        return True

    def stop(self) -> None:
        """Stop the processes this object started (and their children), by their ids."""
        for proc in self._procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self._procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        self._http.close()

    def logs(self) -> str:
        """The tail of each process's output, for failure messages."""
        parts = []
        for name in self._procs:
            text = (self.workdir / f"{name}.log").read_text(errors="replace")
            parts.append(f"--- {name} log (tail) ---\n{text[-LOG_TAIL:]}")
        return "\n".join(parts)

    def wait_for(self, what: str, ready: Callable[[], object], timeout: float, interval: float = 0.5):
        """Poll `ready` until it returns something truthy; fail after `timeout` seconds with the logs."""
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            for name, proc in self._procs.items():
                if proc.poll() is not None:
                    raise UiError(f"{name} exited ({proc.returncode}) while waiting for {what}\n{self.logs()}")
            try:
                result = ready()
            except httpx.HTTPError as exc:  # not listening yet
                last_error, result = exc, None
            if result:
                return result
            time.sleep(interval)
        raise UiError(f"Timed out after {timeout:.0f} s waiting for {what} (last error: {last_error})\n{self.logs()}")

    # --- GraphQL -------------------------------------------------------------------------

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        """POST one GraphQL query to the webserver; GraphQL errors raise with the logs."""
        response = self._http.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}})
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise UiError(f"GraphQL errors: {body['errors']}\n{self.logs()}")
        return body["data"]

    def _location_loaded(self) -> bool:
        data = self.graphql(
            "{ workspaceOrError { ... on Workspace { locationEntries { name "
            "locationOrLoadError { __typename } } } } }"
        )
        entries = data["workspaceOrError"]["locationEntries"]
        kinds = [entry["locationOrLoadError"] and entry["locationOrLoadError"]["__typename"] for entry in entries]
        if "PythonError" in kinds:
            raise UiError(f"The code location failed to load: {data}\n{self.logs()}")
        return bool(entries) and all(kind == "RepositoryLocation" for kind in kinds)
