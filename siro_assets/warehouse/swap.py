"""Swapping staged days into `siro.recordings` in one transaction, without losing anything.

The swap is a merge per id, not a blind replace:
- a warehouse row newer (by `updatedAt`) than the staged one is kept: two runs on one
  day can overlap (the CLI bypasses the run queue), and the one that fetched earlier
  must not undo the other;
- a warehouse row the stage lacks was either created or changed after this run began
  fetching (kept: the run could not have seen it), or the API stopped listing it. The
  API never drops a recording (deletions come back with `deleted: true`), so the latter
  means an incident, such as a 200 with `{"data": [], "cursor": null}`: the swap is
  refused, naming the days and counts, unless the operator allows removals for a
  genuine purge;
- the organization of the token is recorded on the first write, and a token of another
  organization is refused.
A crash, kill or error before COMMIT leaves the previous rows.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime

import duckdb

from .backend import claim_table, write_transaction
from .connection import sql_string
from .identity import claim_organization
from .schema import RECORDINGS_COLUMN_NAMES, ensure_schema

logger = logging.getLogger("siro_assets.warehouse")

#: The op of the default instance's `siro/recordings` asset.
DEFAULT_RECORDINGS_OP = "siro__recordings"


def allow_removals_run_config(op_name: str = DEFAULT_RECORDINGS_OP) -> str:
    """The run config (JSON) that lets the recordings op `op_name` remove recordings (a
    genuine purge); each instance's op is `<key_prefix>__recordings`."""
    return json.dumps({"ops": {op_name: {"config": {"allow_removals": True}}}})


class PartitionShrinkError(RuntimeError):
    """A swap would remove recordings the warehouse holds and the API no longer lists."""


def _quietly(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Clean-up that must not hide the error that made it necessary."""
    try:
        con.execute(sql)
    except duckdb.Error as exc:  # e.g. the connection is already unusable
        logger.warning("DuckDB clean-up %r failed after an earlier error: %s", sql, exc)


@contextmanager
def stage_transaction(con: duckdb.DuckDBPyConnection, stage, organization_id: str | None) -> Iterator[None]:
    """One write transaction with the sealed `stage` attached as catalog `stage`.

    Claims (or checks) the warehouse's organization first; commits when the block ends,
    rolls back on any error, and always detaches the stage.
    """
    ensure_schema(con)
    con.execute(f"ATTACH {sql_string(stage.sealed_path())} AS stage (READ_ONLY)")
    try:
        con.execute("BEGIN TRANSACTION")
        try:
            claim_table(con, "recordings")
            if organization_id is not None:
                claim_organization(con, organization_id)
            yield
            con.execute("COMMIT")
        except BaseException:
            _quietly(con, "ROLLBACK")
            raise
    finally:
        _quietly(con, "DETACH stage")


_IN_DAYS = "partition_date IN (SELECT unnest($p::DATE[]))"
_NEWEST = "coalesce({}.updated_at, '-infinity'::TIMESTAMPTZ)"

# Warehouse rows of the days that are newer than the stage's view of them: a newer
# version of a staged id, or an id created or changed after the stage began fetching.
_FETCHED_AT = "coalesce($fetched_at::TIMESTAMPTZ, 'infinity'::TIMESTAMPTZ)"
_KEEP = f"""
    EXISTS (SELECT 1 FROM stage.recordings AS s
            WHERE s.id = w.id AND {_NEWEST.format('w')} > {_NEWEST.format('s')})
    OR (NOT EXISTS (SELECT 1 FROM stage.recordings AS s WHERE s.id = w.id)
        AND greatest(w.created_at, {_NEWEST.format('w')}) >= {_FETCHED_AT})
"""

_MISSING = f"""
    SELECT partition_date, count(*), list(id ORDER BY id)[:5]
    FROM recordings AS w
    WHERE {_IN_DAYS}
      AND NOT EXISTS (SELECT 1 FROM stage.recordings AS s WHERE s.id = w.id)
      AND NOT ({_KEEP})
    GROUP BY partition_date ORDER BY partition_date
"""


def swap_partitions(
    con: duckdb.DuckDBPyConnection,
    stage,
    partitions: Sequence[date],
    *,
    fetched_at: datetime | None = None,
    organization_id: str | None = None,
    allow_removals: bool = False,
    op_name: str = DEFAULT_RECORDINGS_OP,
) -> int:
    """Merge the stage's rows for `partitions` into `siro.recordings` in one transaction.

    `fetched_at` is when the run began listing (the API's clock): warehouse rows created
    or changed since are newer than the stage and kept. `organization_id` (from
    `caller-identity`) is recorded on the first write and must match afterwards.
    `allow_removals` lets a genuine purge remove recordings the API no longer lists;
    `op_name` is the recordings op the refusal tells the operator to configure.
    Returns the number of rows the partitions hold afterwards. On any error the
    transaction rolls back and the warehouse keeps its previous rows; on a lake, a commit
    that lost to a concurrent writer is merged again onto the newer rows (bounded retries).
    """
    return write_transaction(
        lambda: _swap(con, stage, partitions, fetched_at, organization_id, allow_removals, op_name)
    )


def _swap(con, stage, partitions, fetched_at, organization_id, allow_removals, op_name) -> int:
    columns = ", ".join(RECORDINGS_COLUMN_NAMES)
    days = {"p": list(partitions)}
    params = {**days, "fetched_at": fetched_at}
    with stage_transaction(con, stage, organization_id):
        missing = con.execute(_MISSING, params).fetchall()
        if missing and not allow_removals:
            raise PartitionShrinkError(_shrink_message(missing, op_name))
        if missing:
            logger.warning("Removing recordings the API no longer lists: %s", _counts(missing))
        con.execute(
            f"DELETE FROM recordings AS w WHERE {_IN_DAYS} AND NOT ({_KEEP})", params
        )
        con.execute(
            f"INSERT INTO recordings ({columns}) SELECT {columns} FROM stage.recordings "
            f"WHERE id NOT IN (SELECT id FROM recordings WHERE {_IN_DAYS})",
            days,
        )
        rows = con.execute(
            f"SELECT count(*) FROM recordings WHERE {_IN_DAYS}", days
        ).fetchone()[0]
    return rows


def _counts(missing) -> str:
    return "; ".join(f"{day}: {n} recording(s), e.g. {ids}" for day, n, ids in missing)


def _shrink_message(missing, op_name: str) -> str:
    total = sum(n for _, n, _ in missing)
    return (
        f"Refusing to remove {total} recording(s) the warehouse holds but the API no longer "
        f"lists ({_counts(missing)}). The API returns deleted recordings with `deleted: true` "
        "and never drops them, so this looks like an API incident; the previous rows are kept "
        "and a later run will retry. For a genuine purge, run the day again with run config "
        f"`{allow_removals_run_config(op_name)}` (see docs/ARCHITECTURE.md)."
    )
