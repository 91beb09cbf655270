"""One way to open the warehouse, a DuckDB file or a DuckLake, and the statements that differ.

`open_warehouse` (and the consumers' `connection.duckdb_connection`) return a connection
on which `siro.<table>` resolves in both modes; everything else (transforms, swap, upsert, checks) runs the same
SQL on it. What DuckLake needs differently lives here and only here:

- tables: DuckLake has no PRIMARY KEY / UNIQUE constraints (and so no `ON CONFLICT`
  target); day tables are partitioned by `partition_date`, so a day's replace rewrites
  that day's files only and compaction works per day;
- commits: concurrent writers may conflict at COMMIT, and `write_transaction` re-runs
  the whole transaction (bounded backoff, `lake_retry.retry_lake_conflicts`);
- writers: a DuckDB file takes one writer at a time (`connection.writer_lock`); a lake
  needs no lock file, but DuckLake only detects write-write conflicts on rows it deletes:
  two writers adding a day the table does not hold yet would both commit, and the day's
  rows would be there twice. So every write transaction on a lake table first bumps
  that table's row in `siro_meta.lake_write_guard` (`claim_table`): two such transactions
  always conflict at COMMIT, the later one is re-run on the newer rows, and commits to
  one table take turns while fetching and staging still run side by side.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TypeVar

import duckdb

from .connection import DEFAULT_SCHEMA, open_duckdb, writer_lock
from .tables import schema_exists, table_exists, transaction
from .lake import DUCKLAKE, LakeSettings, is_lake, open_lake, warehouse_mode
from .lake_retry import retry_lake_conflicts

T = TypeVar("T")


def open_warehouse(
    database: str | Path | None = None,
    *,
    lake: LakeSettings | None = None,
    read_only: bool = False,
    lock_timeout: float = 900.0,
    config: dict | None = None,
    schema: str = DEFAULT_SCHEMA,
) -> duckdb.DuckDBPyConnection:
    """Connect to the lake `lake` names, or else to the DuckDB file `database`.

    Either way the warehouse is the default catalog `warehouse` and the instance's
    `schema` the default schema (created by a writer), in UTC.
    """
    if lake is not None:
        return open_lake(lake, read_only=read_only, config=config, schema=schema)
    if database is None:
        raise ValueError("open_warehouse needs a DuckDB file path or lake settings")
    return open_duckdb(database, read_only=read_only, lock_timeout=lock_timeout, config=config, schema=schema)


def lake_settings_from_env(env: Mapping[str, str] | None = None) -> LakeSettings | None:
    """The lake SIRO_WAREHOUSE=ducklake selects (with its SIRO_DUCKLAKE_* / AWS_* settings), or None."""
    return LakeSettings.from_env(env) if warehouse_mode(env) == DUCKLAKE else None


def writer_slot(database: str | Path | None, *, lake: bool, timeout: float = 900.0) -> AbstractContextManager:
    """The one-writer lock file beside a DuckDB file; nothing for a lake (it takes many writers)."""
    return nullcontext() if lake else writer_lock(database, timeout=timeout)


def write_transaction(work: Callable[[], T]) -> T:
    """Run `work`, one whole write transaction, re-running it after a lake commit conflict."""
    return retry_lake_conflicts(work)


_TABLE_CONSTRAINT = re.compile(r",\s*(?:PRIMARY\s+KEY|UNIQUE)\s*\([^)]*\)", re.IGNORECASE)
_COLUMN_CONSTRAINT = re.compile(r"\s+(?:PRIMARY\s+KEY|UNIQUE)\b", re.IGNORECASE)


def without_key_constraints(ddl: str) -> str:
    """`ddl` without PRIMARY KEY / UNIQUE constraints, which DuckLake refuses."""
    return _COLUMN_CONSTRAINT.sub("", _TABLE_CONSTRAINT.sub("", ddl))


def create_keyed_table(con: duckdb.DuckDBPyConnection, ddl: str) -> None:
    """Run `ddl` (CREATE TABLE IF NOT EXISTS with a PRIMARY KEY); on a lake without the key,
    which `upsert` then keeps by MERGE INTO, with the table's write-guard row (`claim_table`)."""
    if not is_lake(con):
        con.execute(ddl)
        return
    name = re.search(r"CREATE TABLE IF NOT EXISTS\s+(\S+)", ddl, re.IGNORECASE).group(1)
    _create_lake_table(con, without_key_constraints(ddl), name, partitioned=False)


def upsert(
    con: duckdb.DuckDBPyConnection, table: str, *, columns: Sequence[str], source: str, key: Sequence[str],
    params: Mapping[str, object], updates: str | None = None, where: str | None = None,
    returning_keys: bool = False,
) -> list[tuple]:
    """Upsert `source` (a SELECT of `columns`, in order, with `params`) into `table` keyed by `key`.

    `updates` (a SET list; None: keep the stored row) and `where` (when to update) see the
    new row as `excluded` and the stored one as `table`. With `returning_keys`, returns the
    keys of the rows inserted or updated. A file runs INSERT ... ON CONFLICT on the table's
    PRIMARY KEY; a lake has no keys and runs MERGE INTO on `key`, and since DuckLake has no
    RETURNING, reads those keys first (in the caller's transaction, so the same rows).
    """
    cols = ", ".join(columns)
    keys = ", ".join(f"{table}.{k}" for k in key)
    if not is_lake(con):
        action = (f"DO UPDATE SET {updates}" + (f" WHERE {where}" if where else "")) if updates else "DO NOTHING"
        tail = f"\nRETURNING {keys}" if returning_keys else ""
        return con.execute(
            f"INSERT INTO {table} ({cols})\n{source}\nON CONFLICT ({', '.join(key)}) {action}{tail}", params
        ).fetchall()
    # Two MERGEs inserting the same new key would both commit (no key to collide on):
    # the guard row makes them conflict at COMMIT instead, and the later one re-runs.
    claim_table(con, table)
    match = " AND ".join(f"{table}.{k} = excluded.{k}" for k in key)
    using = f"({source}) AS excluded({cols})"
    claimed: list[tuple] = []
    if returning_keys:
        kept = f" OR ({where})" if (updates and where) else ("" if not updates else " OR true")
        claimed = con.execute(
            f"SELECT {', '.join(f'excluded.{k}' for k in key)} FROM {using} LEFT JOIN {table} ON {match} "
            f"WHERE {table}.{key[0]} IS NULL{kept}", params
        ).fetchall()
    matched = f"WHEN MATCHED{f' AND ({where})' if where else ''} THEN UPDATE SET {updates}\n" if updates else ""
    values = ", ".join(f"excluded.{c}" for c in columns)
    con.execute(f"MERGE INTO {table} USING {using} ON {match}\n{matched}"
                f"WHEN NOT MATCHED THEN INSERT ({cols}) VALUES ({values})", params)
    return claimed


def create_schema(con: duckdb.DuckDBPyConnection, schema: str) -> None:
    """CREATE SCHEMA IF NOT EXISTS, issued only when missing: on a lake even a no-op CREATE
    is a catalog write, and two first writers creating it at once conflict (retried)."""

    def create() -> None:
        if not schema_exists(con, schema):
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")

    write_transaction(create)


GUARD_SCHEMA = "siro_meta"
GUARD_TABLE = f"{GUARD_SCHEMA}.lake_write_guard"


def _guard_key(con: duckdb.DuckDBPyConnection, name: str) -> str:
    # Always `schema.table`, so two instances' `recordings` (schemas siro and west) have
    # their own guard rows, and a lake written before unqualified names keeps its rows.
    return name if "." in name else f"{con.execute('SELECT current_schema()').fetchone()[0]}.{name}"


def claim_table(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Inside the caller's write transaction on a lake: bump table `name`'s guard row
    (unqualified: in the current schema), so a concurrent write transaction on the same
    table conflicts at COMMIT (see the module docstring). Nothing on a DuckDB file, whose
    writers take turns already."""
    if not is_lake(con):
        return
    key = _guard_key(con, name)
    bumped = con.execute(
        f"UPDATE {GUARD_TABLE} SET writes = writes + 1 WHERE table_name = ?", [key]
    ).fetchone()[0]
    if not bumped:  # a table made before the guard existed gets its row now
        con.execute(f"INSERT INTO {GUARD_TABLE} VALUES (?, 1)", [key])


def create_day_table(con: duckdb.DuckDBPyConnection, ddl: str, qualified_name: str) -> None:
    """Run `ddl` (CREATE TABLE IF NOT EXISTS of a table with `partition_date`); on a lake,
    a new table is partitioned by day in the same transaction, and a concurrent creation
    by another writer is a conflict after which the table exists."""
    if not is_lake(con):
        con.execute(ddl)
        return
    _create_lake_table(con, ddl, qualified_name, partitioned=True)


def _create_lake_table(con: duckdb.DuckDBPyConnection, ddl: str, qualified_name: str, *, partitioned: bool) -> None:
    def create() -> None:
        if table_exists(con, qualified_name):
            return  # no statement at all: even a no-op CREATE would be one more catalog write
        create_schema(con, GUARD_SCHEMA)
        with transaction(con):
            if not table_exists(con, GUARD_TABLE):
                con.execute(f"CREATE TABLE {GUARD_TABLE} (table_name VARCHAR NOT NULL, writes BIGINT NOT NULL)")
            con.execute(without_key_constraints(ddl))
            if partitioned:
                con.execute(f"ALTER TABLE {qualified_name} SET PARTITIONED BY (partition_date)")
            # Created with the table, in one transaction: a concurrent creator conflicts, so
            # there is exactly one guard row per table.
            con.execute(f"INSERT INTO {GUARD_TABLE} VALUES (?, 0)", [_guard_key(con, qualified_name)])

    write_transaction(create)


__all__ = [
    "claim_table",
    "create_day_table",
    "create_keyed_table",
    "create_schema",
    "lake_settings_from_env",
    "open_warehouse",
    "upsert",
    "without_key_constraints",
    "write_transaction",
    "writer_slot",
]
