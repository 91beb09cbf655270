"""Opening the DuckDB warehouse file from several processes.

DuckDB admits one read-write process per file (or several read-only ones). The design
keeps every write lock short (runs stage into their own file and hold the warehouse
only for the swap transaction) and queues writing runs in one pool; waiting on the
lock here is the safety net for the moments two processes still meet, such as two
`dagster asset materialize` commands, which bypass the run queue.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
from tenacity import (
    Retrying,
    before_sleep_log,
    retry_if_exception,
    stop_after_delay,
    wait_random_exponential,
)

from .schema import SCHEMA

logger = logging.getLogger("siro_assets.warehouse")


class WarehouseLockTimeout(RuntimeError):
    """Another process held the DuckDB file for longer than we were willing to wait."""


def _is_lock_error(exc: BaseException) -> bool:
    # DuckDB reports a file held by another process as an IOException whose message
    # says "Could not set lock on file" (or "Conflicting lock is held").
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


# DuckDB's default is 80% of RAM; a pipeline that shares a machine with the Dagster
# daemon and webserver should spill to disk long before that.
DEFAULT_MEMORY_LIMIT = "512MB"


def open_duckdb(
    path: str | Path,
    *,
    read_only: bool = False,
    lock_timeout: float = 900.0,
    config: dict | None = None,
):
    """Connect to `path`, waiting (jittered backoff) while another process holds its lock.

    Every connection runs in UTC so that `TIMESTAMPTZ -> DATE` means the UTC day.
    `config` is DuckDB's connection configuration (`memory_limit` defaults to 512MB).
    """
    config = {"memory_limit": DEFAULT_MEMORY_LIMIT, **(config or {})}
    path = Path(path)
    if path.stem == SCHEMA:
        # DuckDB names the attached file's catalog after its stem; a catalog `siro` makes
        # every `siro.<table>` reference ambiguous ("use a fully qualified path").
        raise ValueError(
            f"The warehouse file must not be named {path.name!r}: DuckDB would call its "
            f"catalog {SCHEMA!r}, which collides with the schema {SCHEMA!r}. "
            "Use another name, e.g. siro_warehouse.duckdb (SIRO_DUCKDB_PATH)."
        )
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    retrying = Retrying(
        retry=retry_if_exception(_is_lock_error),
        wait=wait_random_exponential(multiplier=0.05, max=2.0),
        stop=stop_after_delay(lock_timeout),
        before_sleep=before_sleep_log(logger, logging.INFO),
        reraise=True,
    )
    try:
        con = retrying(duckdb.connect, str(path), read_only=read_only, config=config)
    except duckdb.IOException as exc:
        if _is_lock_error(exc):
            raise WarehouseLockTimeout(
                f"DuckDB file {path} stayed locked by another process for {lock_timeout:.0f}s; "
                "is a writer stuck, or a DuckDB shell holding the file open?"
            ) from exc
        raise
    con.execute("SET TimeZone = 'UTC'")
    return con


@contextmanager
def duckdb_connection(
    path: str | Path, *, read_only: bool = False, lock_timeout: float = 900.0
) -> Iterator[duckdb.DuckDBPyConnection]:
    """`open_duckdb` as a context manager that always closes (and so releases the lock)."""
    con = open_duckdb(path, read_only=read_only, lock_timeout=lock_timeout)
    try:
        yield con
    finally:
        con.close()
