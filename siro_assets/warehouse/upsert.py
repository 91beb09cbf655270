"""Upserting a stage's recordings by id, for runs that fetched only what changed."""

from __future__ import annotations

import duckdb

from .schema import RECORDINGS_COLUMN_NAMES, SCHEMA, ensure_schema
from .staging import RecordingsStage, _quietly


def upsert_recordings(con: duckdb.DuckDBPyConnection, stage: RecordingsStage) -> int:
    """Replace the warehouse rows of the stage's recordings (matched by id) with the
    staged versions, and add the new ones, in one transaction; return how many.

    A recording's `createdAt` never changes, so each row lands in the day partition it
    already had; every other recording of those days is left as it is. On any error the
    transaction rolls back and the warehouse keeps its previous rows.
    """
    ensure_schema(con)
    escaped = str(stage.sealed_path()).replace("'", "''")
    con.execute(f"ATTACH '{escaped}' AS stage (READ_ONLY)")
    columns = ", ".join(RECORDINGS_COLUMN_NAMES)
    try:
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(
                f"DELETE FROM {SCHEMA}.recordings WHERE id IN (SELECT id FROM stage.recordings)"
            )
            upserted = con.execute(
                f"INSERT INTO {SCHEMA}.recordings ({columns}) SELECT {columns} FROM stage.recordings"
            ).fetchone()[0]
            con.execute("COMMIT")
        except BaseException:
            _quietly(con, "ROLLBACK")
            raise
    finally:
        _quietly(con, "DETACH stage")
    return upserted


__all__ = ["upsert_recordings"]
