"""Whether a warehouse table or schema exists, and a transaction block: asked and written the same way everywhere."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether table `name` exists: unqualified, in the connection's current schema (the
    instance's); `schema.table`, in that schema. Readers of a warehouse never written (no
    run yet) answer "nothing there" instead of failing on a missing table."""
    schema, _, table = name.rpartition(".")
    # Of the current database only: a lake connection also attaches its catalog's metadata.
    found = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = coalesce(?, current_schema()) AND table_name = ?",
        [schema or None, table],
    ).fetchone()[0]
    return found > 0


def schema_exists(con: duckdb.DuckDBPyConnection, schema: str) -> bool:
    """Whether `schema` exists in the connection's current database (the warehouse)."""
    found = con.execute(
        "SELECT count(*) FROM duckdb_schemas() WHERE database_name = current_database() AND schema_name = ?",
        [schema],
    ).fetchone()[0]
    return found > 0


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """BEGIN ... COMMIT around the block, rolled back on any error."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        try:
            con.execute("ROLLBACK")
        except duckdb.Error:
            pass  # a failed COMMIT already ended the transaction; its error is the one to raise
        raise
