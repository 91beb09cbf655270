"""Upserting a stage's recordings by id, for runs that fetched only what changed."""

from __future__ import annotations

import duckdb

from .backend import write_transaction
from .schema import RECORDINGS_COLUMN_NAMES
from .swap import stage_transaction

_NEWEST = "coalesce({}.updated_at, '-infinity'::TIMESTAMPTZ)"
# The staged days: a changed recording keeps its createdAt, so its partition.
_STAGED_DAYS = "partition_date IN (SELECT DISTINCT partition_date FROM stage.recordings)"


def upsert_recordings(
    con: duckdb.DuckDBPyConnection, stage, *, organization_id: str | None = None
) -> int:
    """Replace the warehouse rows of the stage's recordings (matched by id) with the
    staged versions, and add the new ones, in one transaction; return how many.

    Every other recording of those days is left as it is, and a warehouse row newer (by
    `updatedAt`) than its staged version is kept, as in `swap_partitions`.
    `organization_id` is recorded on the first write and must match afterwards. On any
    error the transaction rolls back and the warehouse keeps its previous rows (on a
    lake, a commit conflict re-runs it, as `swap_partitions` does).
    """
    return write_transaction(lambda: _upsert(con, stage, organization_id))


def _upsert(con: duckdb.DuckDBPyConnection, stage, organization_id: str | None) -> int:
    columns = ", ".join(RECORDINGS_COLUMN_NAMES)
    with stage_transaction(con, stage, organization_id):
        con.execute(
            f"""
            DELETE FROM recordings AS w
            WHERE {_STAGED_DAYS}
              AND EXISTS (SELECT 1 FROM stage.recordings AS s
                          WHERE s.id = w.id AND {_NEWEST.format('s')} >= {_NEWEST.format('w')})
            """
        )
        upserted = con.execute(
            f"""
            INSERT INTO recordings ({columns})
            SELECT {columns} FROM stage.recordings
            WHERE id NOT IN (SELECT id FROM recordings WHERE {_STAGED_DAYS})
            """
        ).fetchone()[0]
    return upserted


__all__ = ["upsert_recordings"]
