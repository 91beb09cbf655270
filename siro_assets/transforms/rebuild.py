"""Replacing some daily partitions of a derived table, a batch of days per transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import duckdb

from ..warehouse.backend import claim_table, create_day_table, write_transaction
from ..warehouse.schema import ensure_schema
from .table import DerivedTable

# Raw recordings per transaction. A rebuild's cost is its rows: bounding the rows per
# transaction bounds the undo state DuckDB keeps and the memory a rebuild needs, so a
# backfill of a year costs a year's rows, in steps, not one giant transaction.
BATCH_RECORDINGS = 500_000


def partition_batches(
    con: duckdb.DuckDBPyConnection, partitions: Sequence[date], max_recordings: int = BATCH_RECORDINGS
) -> list[list[date]]:
    """Consecutive groups of `partitions` holding at most `max_recordings` raw rows each
    (a single bigger day is a batch of its own)."""
    days = sorted(set(partitions))
    counts = dict(
        con.execute(
            f"SELECT partition_date, count(*) FROM recordings "
            "WHERE partition_date IN (SELECT unnest($p::DATE[])) GROUP BY 1",
            {"p": days},
        ).fetchall()
    )
    batches: list[list[date]] = []
    rows = 0
    for day in days:
        n = counts.get(day, 0)
        if batches and rows + n <= max_recordings:
            batches[-1].append(day)
            rows += n
        else:
            batches.append([day])
            rows = n
    return batches


def rebuild_partitions(
    con: duckdb.DuckDBPyConnection,
    table: DerivedTable,
    partitions: Sequence[date],
    *,
    max_recordings_per_batch: int = BATCH_RECORDINGS,
) -> int:
    """Recompute `partitions` of `table` from `siro.recordings`; return their row count.

    Creates the table if missing, then per batch of days deletes the days' rows and
    inserts the fresh ones in one transaction: readers see a day's old rows or its new
    ones, never a half-built day, and an error rolls back the batch in progress (days
    of earlier batches are already rebuilt, which is what a retry would do too). Rows
    of recordings deleted or purged since the last build disappear because each day is
    rebuilt whole, not merged.
    """
    # The raw table may not exist yet when a derived asset runs first on a fresh
    # warehouse; an empty one yields empty partitions instead of an error.
    ensure_schema(con)
    create_day_table(con, table.ddl(), table.name)
    columns = ", ".join(table.column_names)
    in_partitions = "partition_date IN (SELECT unnest($partitions::DATE[]))"
    # Row order inside a table means nothing here (every read orders or aggregates), and
    # keeping it forces inserts through one thread.
    previous_order = con.execute("SELECT current_setting('preserve_insertion_order')").fetchone()[0]
    con.execute("SET preserve_insertion_order = false")
    total = 0
    try:
        for batch in partition_batches(con, partitions, max_recordings_per_batch) or [[]]:
            params = {"partitions": batch}

            def replace_batch() -> int:
                con.execute("BEGIN TRANSACTION")
                try:
                    claim_table(con, table.name)
                    con.execute(f"DELETE FROM {table.name} WHERE {in_partitions}", params)
                    inserted = con.execute(
                        f"INSERT INTO {table.name} ({columns}) {table.select}", params
                    ).fetchone()[0]
                    con.execute("COMMIT")
                except BaseException:
                    try:
                        con.execute("ROLLBACK")
                    except duckdb.Error:
                        pass  # the original error is the one worth reporting; nothing was committed
                    raise
                return inserted

            # On a lake a concurrent writer can win the commit; the batch is then rebuilt again.
            total += write_transaction(replace_batch)
    finally:
        con.execute(f"SET preserve_insertion_order = {str(previous_order).lower()}")
    return total


__all__ = ["BATCH_RECORDINGS", "partition_batches", "rebuild_partitions"]
