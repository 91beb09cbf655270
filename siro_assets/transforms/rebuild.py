"""Replacing some daily partitions of a derived table in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import duckdb

from ..warehouse.schema import ensure_schema
from .table import DerivedTable


def rebuild_partitions(
    con: duckdb.DuckDBPyConnection, table: DerivedTable, partitions: Sequence[date]
) -> int:
    """Recompute `partitions` of `table` from `siro.recordings`; return their row count.

    Creates the table if missing, deletes the partitions' rows and inserts the fresh
    ones, all in one transaction: readers see the old rows or the new ones, never a
    half-built partition, and any error rolls back to the previous contents. Rows of
    recordings deleted or purged since the last build disappear because the partition
    is rebuilt whole, not merged.
    """
    params = {"partitions": sorted(set(partitions))}
    columns = ", ".join(table.column_names)
    in_partitions = "partition_date IN (SELECT unnest($partitions::DATE[]))"
    con.execute("BEGIN TRANSACTION")
    try:
        # The raw table may not exist yet when a derived asset runs first on a fresh
        # warehouse; an empty one yields empty partitions instead of an error.
        ensure_schema(con)
        con.execute(table.ddl())
        con.execute(f"DELETE FROM {table.qualified_name} WHERE {in_partitions}", params)
        con.execute(f"INSERT INTO {table.qualified_name} ({columns}) {table.select}", params)
        rows = con.execute(
            f"SELECT count(*) FROM {table.qualified_name} WHERE {in_partitions}", params
        ).fetchone()[0]
        con.execute("COMMIT")
    except BaseException:
        try:
            con.execute("ROLLBACK")
        except duckdb.Error:
            pass  # the original error is the one worth reporting; nothing was committed
        raise
    return rows


__all__ = ["rebuild_partitions"]
