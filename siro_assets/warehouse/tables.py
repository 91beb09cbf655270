"""Whether a warehouse table exists, asked of DuckDB's catalog the same way everywhere."""

from __future__ import annotations

import duckdb


def table_exists(con: duckdb.DuckDBPyConnection, qualified_name: str) -> bool:
    """Whether `schema.table` exists: readers of a warehouse never written (no run yet)
    answer "nothing there" instead of failing on a missing table."""
    schema, table = qualified_name.split(".")
    found = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?", [schema, table]
    ).fetchone()[0]
    return found > 0
