"""Dagster resources: the Siro API and the DuckDB warehouse.

Both are `ConfigurableResource`s so that every setting shows in the Dagster UI and can
come from an `EnvVar`; the component (`siro_assets.component`) binds them under its
instance's resource keys. The simulator's resource is its own class, in the simulator's
package (`siro_assets.simulator.resource`), so production code never imports it.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

import duckdb
from dagster import ConfigurableResource
from dagster_duckdb import DuckDBResource
from pydantic import Field

from .. import redaction
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
from ..warehouse.backend import open_warehouse, writer_slot
from ..warehouse.connection import DEFAULT_SCHEMA
from ..warehouse.lake import CATALOG_ENV_VAR, DATA_PATH_ENV_VAR, DUCKLAKE, LakeSettings, lake_exists

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


@lru_cache(maxsize=None)
def _postgres_pacer(dsn: str, key: str, requests_per_minute: float) -> RequestPacer:
    # One per process, database and token hash: one connection per process.
    from ..api_client.pg_budget import PostgresRequestPacer

    return PostgresRequestPacer(dsn, key, requests_per_minute=requests_per_minute)


class SiroApiResource(ConfigurableResource):
    """Siro's recordings API.

    The token is never logged or put into metadata; supply it with
    `EnvVar("SIRO_API_TOKEN")` so the UI shows only the variable's name (the component
    does, from `api.token_env`), and it is read when each run or tick starts.
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
    rate_budget_dsn: str | None = Field(
        default=None,
        repr=False,
        description="libpq DSN of a PostgreSQL database holding the token's request budget, shared "
        "by every process on every machine (lake mode: the lake catalog's); takes precedence over "
        "rate_budget_file.",
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

    def _connection_args(self) -> tuple[str, str, object]:
        """(token, base URL, transport or None for the network)."""
        token = self.resolved_token()
        if not token:
            raise MissingTokenError(
                "No Siro API token: set SIRO_API_TOKEN (or the variable the component's "
                "api.token_env names) to an organization integration token (Siro admin -> "
                "API Tokens), or run the simulator (SIRO_SIMULATOR=1)."
            )
        base_url = self.base_url or os.environ.get(BASE_URL_ENV_VAR) or DEFAULT_BASE_URL
        return token, base_url, None

    def resolved_token(self) -> str:
        """The configured token, stripped and registered for scrubbing.

        A token from a file or a CRLF .env ends in a newline: strip it here, where it is
        resolved, and register it so CRM and run errors are scrubbed of it too. Other
        characters a header cannot carry are refused by the client, without the value.
        """
        token = (self.token or "").strip()
        redaction.register(token)
        return token

    def _shares_budget(self) -> bool:
        return bool(self.rate_budget_file or self.rate_budget_dsn)

    def _pacer(self, token: str) -> RequestPacer:
        if self._shares_budget() and self.rate_budget_dsn:
            return _postgres_pacer(self.rate_budget_dsn, budget_key(token.strip()), self.requests_per_minute)
        if self._shares_budget():
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
        """The API's notion of now: the wall clock (the simulator's resource has its own)."""
        return datetime.now(timezone.utc)


class WarehouseResource(DuckDBResource):
    """The DuckDB warehouse file, shared by every run and by downstream readers.

    Extends dagster-duckdb's `DuckDBResource` (so it drops in wherever that is expected)
    with read-only connections and a jittered wait while another process holds the file.
    """

    lock_timeout_seconds: float = Field(
        default=900.0, description="How long to wait for another process's DuckDB lock."
    )
    table_schema: str = Field(
        default=DEFAULT_SCHEMA,
        description="The instance's SQL schema (`warehouse.schema`): every connection's default "
        "schema, created by the first writer.",
    )
    backend: str = Field(
        default="duckdb",
        description="`duckdb` (the file `database`) or `ducklake` (SIRO_WAREHOUSE); a lake keeps "
        "only run stages beside `database`.",
    )
    ducklake_catalog: str | None = Field(
        default=None, repr=False, description="libpq DSN of the lake's PostgreSQL catalog (SIRO_DUCKLAKE_CATALOG)."
    )
    ducklake_data_path: str | None = Field(
        default=None, description="The lake's data files: a directory or s3://bucket/prefix/ (SIRO_DUCKLAKE_DATA_PATH)."
    )

    def lake_settings(self) -> LakeSettings | None:
        """The lake to open (AWS_* read from this process's environment), or None for a file."""
        if self.backend != DUCKLAKE:
            return None
        env = {**os.environ, CATALOG_ENV_VAR: self.ducklake_catalog or "", DATA_PATH_ENV_VAR: self.ducklake_data_path or ""}
        return LakeSettings.from_env(env)

    def exists(self) -> bool:
        """Whether there is a warehouse to read yet: the file, or the lake's catalog."""
        lake = self.lake_settings()
        return lake_exists(lake) if lake is not None else Path(self.database).exists()

    def describe(self) -> str:
        """How messages name the warehouse: the file's path, or the lake's data path (never the DSN)."""
        lake = self.lake_settings()
        return f"DuckLake at {lake.data_path}" if lake is not None else f"file {self.database}"

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
        lake = self.lake_settings()
        with writer_slot(self.database, lake=lake is not None, timeout=self.lock_timeout_seconds):
            con = open_warehouse(
                self.database, lake=lake, lock_timeout=self.lock_timeout_seconds, config=self.connection_config,
                schema=self.table_schema,
            )
            try:
                yield con
            finally:
                con.close()

    @contextmanager
    def read_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection for checks and consumers."""
        con = open_warehouse(
            self.database,
            lake=self.lake_settings(),
            read_only=True,
            lock_timeout=self.lock_timeout_seconds,
            config=self.connection_config,
            schema=self.table_schema,
        )
        try:
            yield con
        finally:
            con.close()


def default_duckdb_path(simulated: bool = False) -> str:
    """Where the warehouse lives unless the component's `warehouse.path` says otherwise.

    Simulated data gets its own file so it can never mix with real data.
    """
    name = "siro_simulator.duckdb" if simulated else "siro.duckdb"
    return str(Path("data") / name)


def rate_budget_path(warehouse_path: str | Path) -> Path:
    """The shared request-budget file that sits beside a warehouse file."""
    return Path(warehouse_path).resolve().parent / RATE_BUDGET_FILE_NAME


__all__ = [
    "MissingTokenError",
    "SiroApiResource",
    "SiroAuthError",
    "WarehouseResource",
    "rate_budget_path",
    "default_duckdb_path",
]
