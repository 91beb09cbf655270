"""Dagster resources: the Siro API (real or simulated) and the DuckDB warehouse.

Both are `ConfigurableResource`s so that every setting shows in the Dagster UI and can
come from an `EnvVar`; `build_resources_from_env` is the one place that maps the
documented environment variables onto them.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timezone
from functools import lru_cache
from pathlib import Path

import duckdb
from dagster import ConfigurableResource, EnvVar
from dagster_duckdb import DuckDBResource
from pydantic import Field

from ..api_client import (
    DEFAULT_BASE_URL,
    AsyncSiroClient,
    CallerIdentity,
    RequestPacer,
    RetryPolicy,
    SiroAuthError,
    SiroClient,
)
from ..api_client.pacing import DEFAULT_REQUESTS_PER_MINUTE, SharedRequestPacer, budget_key
from ..api_client.timestamps import parse_ts
from ..warehouse.connection import open_duckdb, writer_lock

SIMULATOR_TOKEN = "simulator-token"
TOKEN_ENV_VAR = "SIRO_API_TOKEN"
BASE_URL_ENV_VAR = "SIRO_API_BASE_URL"
DUCKDB_PATH_ENV_VAR = "SIRO_DUCKDB_PATH"
# The per-token request budget every process on the machine shares, beside the warehouse:
# the one directory that the code server, run workers and CLI runs all see.
RATE_BUDGET_FILE_NAME = ".siro-rate-budget.sqlite"

# The derived rebuilds (pure warehouse work) run in this pool; dagster.yaml makes it an
# op-granularity pool of one, so a step holds the slot only while it runs. Every write
# also takes the warehouse's writer lock (`get_connection`), which serialises writers
# across processes, including `dg launch` runs that bypass the run queue.
WAREHOUSE_POOL = "siro_duckdb"

STALE_STAGE_SECONDS = 24 * 3600


class MissingTokenError(RuntimeError):
    """Raised before any request when no API token is configured."""


@lru_cache(maxsize=None)
def _process_pacer(requests_per_minute: float) -> RequestPacer:
    # One pacer per process and rate: the 1,000 requests/minute budget belongs to the
    # token, so every client a run creates (sync or async, any thread) must share it.
    return RequestPacer(requests_per_minute=requests_per_minute)


@lru_cache(maxsize=None)
def _shared_pacer(path: str, key: str, requests_per_minute: float) -> SharedRequestPacer:
    # One per process, file and token hash, so a process keeps one connection to the file.
    return SharedRequestPacer(path, key, requests_per_minute=requests_per_minute)


@lru_cache(maxsize=8)
def _simulated_world(seed: int, recordings_per_day: int, start_date: str):
    from ..simulator import World, WorldConfig

    # Cached so the world's per-day generation cache survives across clients in a process.
    return World(
        WorldConfig(
            seed=seed,
            recordings_per_day=recordings_per_day,
            start_date=date.fromisoformat(start_date),
        )
    )


class SiroApiResource(ConfigurableResource):
    """Siro's recordings API, or the built-in simulator when `use_simulator` is set.

    The token is never logged or put into metadata; supply it with
    `EnvVar("SIRO_API_TOKEN")` so the UI shows only the variable's name.
    """

    token: str | None = Field(
        default=None,
        description="Organization integration token (Siro admin -> API Tokens), from SIRO_API_TOKEN.",
        repr=False,  # resources get logged and rendered; the secret must not ride along
    )
    base_url: str | None = Field(
        default=None,
        description=f"API base URL; unset: {BASE_URL_ENV_VAR} when the run starts, else {DEFAULT_BASE_URL}.",
    )
    use_simulator: bool = Field(
        default=False, description="Serve requests from the in-process simulator (SIRO_SIMULATOR=1)."
    )
    simulator_seed: int = 7
    simulator_recordings_per_day: int = 40
    simulator_start_date: str = "2026-01-01"
    simulator_now: str | None = Field(
        default=None,
        description="Freeze the simulator clock at this ISO timestamp (tests); wall clock if unset.",
    )
    simulator_page_size_cap: int = 100
    simulator_fault_script: list[str] = Field(
        default_factory=list,
        description="Faults the simulator serves first, in order (e.g. 429, 500, truncate).",
    )
    requests_per_minute: float = Field(
        default=DEFAULT_REQUESTS_PER_MINUTE,
        description="Client-side pacing; Siro allows 1,000 requests/minute per token.",
    )
    page_size: int = Field(
        default=1000,
        description="Records asked for per page; the server may serve fewer, and that is what counts.",
    )
    rate_budget_file: str | None = Field(
        default=None,
        description="SQLite file holding the request budget shared by every process using the "
        "same token (beside the warehouse); unset: this process paces on its own.",
    )
    max_concurrent_windows: int = Field(
        default=16,
        description=(
            "Upper bound on windows listed at once; the number used follows from the "
            "measured latency and the rate budget (Little's law)."
        ),
    )
    max_attempts: int = Field(
        default=8, description="Attempts per request on 429/5xx/timeouts (about 60 s of backoff in all)."
    )
    initial_backoff_seconds: float = 0.5
    timeout_seconds: float = 30.0

    def _retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.max_attempts,
            initial_backoff=self.initial_backoff_seconds,
            max_backoff=max(self.initial_backoff_seconds, 30.0),
        )

    def simulator_api(self):
        """The in-process simulator this resource talks to (only with `use_simulator`)."""
        from ..simulator import FixedClock, SimulatorApi, WallClock

        world = _simulated_world(
            self.simulator_seed, self.simulator_recordings_per_day, self.simulator_start_date
        )
        clock = FixedClock(parse_ts(self.simulator_now)) if self.simulator_now else WallClock()
        api = SimulatorApi(world, clock, page_size_cap=self.simulator_page_size_cap)
        if self.simulator_fault_script:
            api.script_faults(list(self.simulator_fault_script))
        return api

    def _connection_args(self) -> tuple[str, str, object]:
        if self.use_simulator:
            from ..simulator import SimulatorTransport

            # A configured token is sent to the simulator too, so it exercises the same
            # code path (and the same secrecy) as a real one.
            token = self.token or SIMULATOR_TOKEN
            return token, "http://siro-simulator", SimulatorTransport(self.simulator_api())
        if not self.token:
            raise MissingTokenError(
                "No Siro API token: set SIRO_API_TOKEN to an organization integration token "
                "(Siro admin -> API Tokens), or SIRO_SIMULATOR=1 to use the built-in simulator."
            )
        base_url = self.base_url or os.environ.get(BASE_URL_ENV_VAR) or DEFAULT_BASE_URL
        return self.token, base_url, None

    def _pacer(self, token: str) -> RequestPacer:
        if self.rate_budget_file and not self.use_simulator:
            return _shared_pacer(
                str(Path(self.rate_budget_file).resolve()), budget_key(token.strip()), self.requests_per_minute
            )
        return _process_pacer(self.requests_per_minute)

    def _client_args(self) -> tuple[tuple, dict]:
        token, base_url, transport = self._connection_args()
        options = dict(
            transport=transport,
            pacer=self._pacer(token),
            retry=self._retry_policy(),
            timeout=self.timeout_seconds,
        )
        return (token, base_url), options

    def client(self, *, retry: RetryPolicy | None = None, timeout: float | None = None) -> SiroClient:
        """A synchronous client drawing on the token's shared request budget.

        ``retry`` and ``timeout`` override the resource's settings for callers with a
        tighter deadline than a run (the sensor must finish a tick within 60 s).
        """
        args, options = self._client_args()
        if retry is not None:
            options["retry"] = retry
        if timeout is not None:
            options["timeout"] = timeout
        return SiroClient(*args, **options)

    def async_client(self) -> AsyncSiroClient:
        """An asyncio client drawing on the token's shared request budget."""
        args, options = self._client_args()
        return AsyncSiroClient(*args, **options)

    def verify_token(self) -> CallerIdentity:
        """Check the token with one cheap call before a long run; raises SiroAuthError."""
        with self.client() as client:
            return client.caller_identity()

    def now(self) -> datetime:
        """The API's notion of now: the simulator clock, or the wall clock."""
        if self.use_simulator and self.simulator_now:
            return parse_ts(self.simulator_now)
        return datetime.now(timezone.utc)


class WarehouseResource(DuckDBResource):
    """The DuckDB warehouse file, shared by every run and by downstream readers.

    Extends dagster-duckdb's `DuckDBResource` (so it drops in wherever that is expected)
    with read-only connections and a jittered wait while another process holds the file.
    """

    lock_timeout_seconds: float = Field(
        default=900.0, description="How long to wait for another process's DuckDB lock."
    )

    def staging_directory(self) -> Path:
        """Where runs put their private staging files: next to the warehouse file.

        Stages of runs that were killed (and so never cleaned up) are removed once they
        are a day old; no live run stages for that long.
        """
        directory = Path(self.database).resolve().parent / ".staging"
        directory.mkdir(parents=True, exist_ok=True)
        cutoff = time.time() - STALE_STAGE_SECONDS
        for stale in directory.glob("siro-stage-*"):
            if stale.stat().st_mtime < cutoff:
                shutil.rmtree(stale, ignore_errors=True)
        return directory

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection holding the warehouse's one-writer slot (a lock file
        beside it, shared by every process); both are released on exit, so open it only
        around the write itself."""
        with writer_lock(self.database, timeout=self.lock_timeout_seconds):
            con = open_duckdb(
                self.database, lock_timeout=self.lock_timeout_seconds, config=self.connection_config
            )
            try:
                yield con
            finally:
                con.close()

    @contextmanager
    def read_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection for checks and consumers."""
        con = open_duckdb(
            self.database,
            read_only=True,
            lock_timeout=self.lock_timeout_seconds,
            config=self.connection_config,
        )
        try:
            yield con
        finally:
            con.close()


def default_duckdb_path(simulated: bool) -> str:
    """Where the warehouse lives unless SIRO_DUCKDB_PATH says otherwise.

    Simulated data gets its own file so it can never mix with real data.
    """
    name = "siro_simulator.duckdb" if simulated else "siro.duckdb"
    return str(Path("data") / name)


def simulator_enabled() -> bool:
    """Whether `SIRO_SIMULATOR` asks for the built-in simulator (read when the code loads)."""
    return os.environ.get("SIRO_SIMULATOR", "").strip().lower() in {"1", "true", "yes"}


def warehouse_path_from_env() -> Path:
    """The warehouse file the documented variables select: `SIRO_DUCKDB_PATH` or the default.

    For scripts that need the path itself; resources get it through `EnvVar`.
    """
    return Path(os.environ.get(DUCKDB_PATH_ENV_VAR) or default_duckdb_path(simulator_enabled()))


def rate_budget_path(warehouse_path: str | Path) -> Path:
    """The shared request-budget file that sits beside a warehouse file."""
    return Path(warehouse_path).resolve().parent / RATE_BUDGET_FILE_NAME


def build_resources_from_env() -> dict[str, ConfigurableResource]:
    """Map the documented environment variables onto the resources.

    The token is always bound with `EnvVar`, so it is read when a run or tick starts (in
    that process's environment), never baked in when the code loads: a code server
    started without it still runs with the run's token, and the UI shows only the name.
    An unset base URL is likewise looked up when the run starts. `SIRO_SIMULATOR` and the
    warehouse path choose the resources' shape and are read where the code loads.
    """
    simulated = simulator_enabled()
    if simulated:
        siro = SiroApiResource(use_simulator=True)
    else:
        siro = SiroApiResource(
            token=EnvVar(TOKEN_ENV_VAR),
            base_url=EnvVar(BASE_URL_ENV_VAR) if os.environ.get(BASE_URL_ENV_VAR) else None,
            rate_budget_file=str(rate_budget_path(warehouse_path_from_env())),
        )
    database = (
        EnvVar(DUCKDB_PATH_ENV_VAR) if os.environ.get(DUCKDB_PATH_ENV_VAR) else default_duckdb_path(simulated)
    )
    # Imported here: the writebacks package imports this module for WarehouseResource.
    from .writebacks.resource import crm_resource_from_env

    return {"siro_api": siro, "warehouse": WarehouseResource(database=database), "crm": crm_resource_from_env()}


__all__ = [
    "MissingTokenError",
    "SiroApiResource",
    "SiroAuthError",
    "WarehouseResource",
    "build_resources_from_env",
    "rate_budget_path",
    "simulator_enabled",
    "warehouse_path_from_env",
]
