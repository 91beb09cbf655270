"""Opening the DuckDB warehouse file from several processes, whatever the file is called.

Every connection is an in-memory DuckDB with the warehouse file ATTACHed under the fixed
alias `warehouse` and made the default catalog (`USE warehouse`). Opened directly, DuckDB
names a file's catalog after its stem, so the README's own `data/siro.duckdb` would
yield a catalog `siro` beside the schema `siro`, and every `siro.recordings` would be
"Ambiguous reference to catalog or schema". With the fixed alias any file name works:
`siro.duckdb`, names with spaces or non-ASCII letters, names that are SQL keywords.

Every connection then makes the instance's schema (`siro` unless the component's
`warehouse.schema` says otherwise) its default (`use_schema`), so the package's SQL names
tables unqualified and two instances sharing one file never see each other's tables.

DuckDB admits one read-write process per file (or several read-only ones). Writers are
serialised by `writer_lock` (a lock file beside the warehouse) held only around a
write; waiting on DuckDB's own lock here is the safety net for a process that does not
take it, such as a DuckDB shell left open on the file.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import duckdb
from filelock import FileLock, Timeout
from tenacity import (
    Retrying,
    before_sleep_log,
    retry_if_exception,
    stop_after_delay,
    wait_random_exponential,
)

from .tables import schema_exists

logger = logging.getLogger("siro_assets.warehouse")

#: The catalog name every connection gives the warehouse file (see the module docstring).
WAREHOUSE_CATALOG = "warehouse"

#: The README's warehouse file when SIRO_DUCKDB_PATH is unset.
DEFAULT_DUCKDB_PATH = "data/siro.duckdb"


#: The schema of the tables unless an instance names another (`warehouse.schema`).
DEFAULT_SCHEMA = "siro"

# Lower case only: DuckDB matches identifiers case-insensitively but `duckdb_tables()`
# reports them as created, so "West" and "west" would be one schema with two spellings.
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# Ours (the organization record, the lake's write guard) and DuckDB's own.
_RESERVED_SCHEMAS = frozenset({"siro_meta", "information_schema", "pg_catalog"})


@lru_cache(maxsize=1)
def _reserved_keywords() -> frozenset[str]:
    with duckdb.connect() as con:
        return frozenset(row[0] for row in con.execute(
            "SELECT keyword_name FROM duckdb_keywords() WHERE keyword_category = 'reserved'").fetchall())


def checked_schema(name: str) -> str:
    """`name` if it can be an instance's schema, else ValueError: a lower-case SQL
    identifier that is no reserved keyword, so consumers' SQL (and Dagster's DuckDB I/O
    managers, which do not quote) can write `<schema>.recordings` as is."""
    if not isinstance(name, str) or not _SCHEMA_NAME.fullmatch(name):
        raise ValueError(
            f"warehouse schema must be a lower-case SQL identifier ([a-z_][a-z0-9_]*, at most 63 "
            f"characters), got {name!r}"
        )
    if name in _RESERVED_SCHEMAS or name in _reserved_keywords():
        raise ValueError(f"warehouse schema {name!r} is reserved (by siro-assets or SQL); choose another name")
    return name


def quote_identifier(name: str) -> str:
    """`name` as a double-quoted SQL identifier (so a keyword such as `order` works too)."""
    return '"' + name.replace('"', '""') + '"'


def use_schema(con: duckdb.DuckDBPyConnection, schema: str, *, create: bool) -> None:
    """Make `schema` of the connection's current catalog (the warehouse) its default,
    creating it first when `create` (a writer) and it is missing.

    Asked before created: on a lake even a no-op CREATE SCHEMA is a catalog write. A
    reader of a schema never written stays on the catalog's `main`, where none of the
    tables exists, so it reads "nothing there" exactly as before the first run.
    """
    schema = checked_schema(schema)
    catalog = con.execute("SELECT current_database()").fetchone()[0]
    qualified = f"{quote_identifier(catalog)}.{quote_identifier(schema)}"
    exists = schema_exists(con, schema)
    if not exists and create:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {qualified}")
        exists = True
    if exists:
        con.execute(f"USE {qualified}")


class WarehouseLockTimeout(RuntimeError):
    """Another process held the DuckDB file for longer than we were willing to wait."""


class WarehouseVersionError(RuntimeError):
    """The warehouse file was written by a newer DuckDB than the one siro-assets runs."""


def _is_newer_storage_error(exc: BaseException) -> bool:
    # DuckDB 1.5 on a file DuckDB 2.x wrote: "Trying to read a database file with version
    # number 999, ... The database file was created with an newer version of DuckDB."
    return isinstance(exc, duckdb.IOException) and "newer version of duckdb" in str(exc).lower()


def _is_lock_error(exc: BaseException) -> bool:
    # DuckDB reports a file held by another process as an IOException whose message
    # says "Could not set lock on file" (or "Conflicting lock is held"). Not any "lock":
    # a corrupt file's "... checksum ... in block at location 0" is no reason to wait.
    message = str(exc).lower()
    return isinstance(exc, duckdb.IOException) and ("could not set lock" in message or "conflicting lock" in message)


# DuckDB's default is 80% of RAM; a pipeline that shares a machine with the Dagster
# daemon and webserver should spill to disk long before that.
DEFAULT_MEMORY_LIMIT = "512MB"


def sql_string(value: str | Path) -> str:
    """`value` as a single-quoted SQL string literal (for ATTACH, which takes no parameters)."""
    return "'" + str(value).replace("'", "''") + "'"


def _attach(path: Path, *, read_only: bool, config: dict, schema: str) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:", config=config)
    try:
        mode = " (READ_ONLY)" if read_only else ""
        con.execute(f"ATTACH {sql_string(path)} AS {WAREHOUSE_CATALOG}{mode}")
        con.execute(f"USE {WAREHOUSE_CATALOG}")
        use_schema(con, schema, create=not read_only)
    except BaseException:
        con.close()
        raise
    return con


def open_duckdb(
    path: str | Path,
    *,
    read_only: bool = False,
    lock_timeout: float = 900.0,
    config: dict | None = None,
    schema: str = DEFAULT_SCHEMA,
):
    """Connect to the warehouse file `path` (as catalog `warehouse`, default schema
    `schema`), waiting (jittered backoff) while another process holds its lock.

    Every connection runs in UTC so that `TIMESTAMPTZ -> DATE` means the UTC day.
    `config` is DuckDB's connection configuration (`memory_limit` defaults to 512MB;
    spill files go beside the warehouse file, not into the working directory).
    """
    path = Path(path)
    config = {
        "memory_limit": DEFAULT_MEMORY_LIMIT,
        "temp_directory": str(path.parent / f"{path.name}.tmp"),
        **(config or {}),
    }
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
        con = retrying(_attach, path, read_only=read_only, config=config, schema=schema)
    except duckdb.IOException as exc:
        if _is_lock_error(exc):
            raise WarehouseLockTimeout(
                f"DuckDB file {path} stayed locked by another process for {lock_timeout:.0f}s; "
                "is a writer stuck, or a DuckDB shell holding the file open?"
            ) from exc
        if _is_newer_storage_error(exc):
            from . import storage_downgrade

            raise WarehouseVersionError(
                f"DuckDB file {path} was written by a newer DuckDB than this one ({duckdb.__version__}), "
                "most likely while siro-assets ran DuckDB 2.0. Nothing was changed. Rewrite it once, "
                "with no run going (the original is kept as a backup): "
                "python3 -m venv /tmp/duckdb2 && /tmp/duckdb2/bin/pip install 'duckdb>=2,<3' && "
                f"/tmp/duckdb2/bin/python {storage_downgrade.__file__} {path}"
            ) from exc
        raise
    con.execute("SET TimeZone = 'UTC'")
    return con


@contextmanager
def duckdb_connection(
    path: str | Path | None = None,
    *,
    lake=None,
    read_only: bool = False,
    lock_timeout: float = 900.0,
    schema: str = DEFAULT_SCHEMA,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A warehouse connection that always closes (and so releases a file's lock).

    The recommended way for consumers to read the warehouse, a DuckDB file or a DuckLake:
    `siro.recordings` (or just `recordings`, in the default schema `schema`) resolves in
    both. `path` is a DuckDB file; `lake` a
    `warehouse.lake.LakeSettings`. With neither, the documented variables decide, as for
    the pipeline: `SIRO_WAREHOUSE=ducklake` with `SIRO_DUCKLAKE_CATALOG`,
    `SIRO_DUCKLAKE_DATA_PATH` and `AWS_*`, else the file `SIRO_DUCKDB_PATH`
    (default `data/siro.duckdb`). A lake reader reads a committed snapshot and never
    blocks a writer; on a file, close the connection soon, as it holds the file's lock.
    """
    # Imported here: the lake module builds on this one.
    from .backend import lake_settings_from_env, open_warehouse

    if path is None and lake is None:
        lake = lake_settings_from_env()
        if lake is None:
            path = os.environ.get("SIRO_DUCKDB_PATH") or DEFAULT_DUCKDB_PATH
    con = open_warehouse(path, lake=lake, read_only=read_only, lock_timeout=lock_timeout, schema=schema)
    try:
        yield con
    finally:
        con.close()


def writer_lock_path(path: str | Path) -> Path:
    """The lock file that serialises writers of the warehouse `path`: beside it."""
    path = Path(path)
    return path.parent / f"{path.name}.writer.lock"


@contextmanager
def writer_lock(path: str | Path, *, timeout: float = 900.0) -> Iterator[None]:
    """Hold the warehouse's one-writer slot, across processes, for the `with` block.

    A lock file beside the warehouse (`filelock`, an OS lock the kernel releases if the
    holder dies), so every process that writes (run workers, `dg launch` runs that bypass
    the run queue, scripts) takes turns, and only for the write itself: fetching and
    staging happen outside it. Waits up to `timeout` seconds, logging once if it must.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(writer_lock_path(path), timeout=timeout)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        logger.warning("Waiting for the warehouse writer lock on %s (another run is writing)", path)
        try:
            lock.acquire(timeout=timeout)
        except Timeout as exc:
            raise WarehouseLockTimeout(
                f"Another process held the writer lock {writer_lock_path(path)} for "
                f"{timeout:.0f}s; is a writer stuck?"
            ) from exc
    try:
        yield
    finally:
        lock.release()
