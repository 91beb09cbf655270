"""Compaction and snapshot expiry of a DuckLake warehouse, with the installed extension's functions.

Every partition replace (the swap, each derived rebuild, every write-guard bump) commits
a snapshot with new Parquet files and, for rows it replaces in files it keeps, delete
files. Old snapshots keep their files alive so that readers and time travel can use
them. Left alone, a lake grows one small file per table per write and reads slow down.
`maintain_lake` runs, in this order (names as DuckLake 1.5.5 ships them):

1. `ducklake_rewrite_data_files`: rewrites files that carry deletes (applies them);
2. `ducklake_merge_adjacent_files`: merges small files of a table (per partition);
3. `ducklake_expire_snapshots(older_than => now - retention)`: forgets older snapshots;
4. `ducklake_cleanup_old_files(older_than => now - retention)`: deletes the files that
   no kept snapshot reads and that left the lake longer ago than the retention.

Steps 1-2 schedule the files they replace for deletion at once (the merged files carry
the rows' snapshot range, so time travel reads them instead); step 4 waits out the
retention before deleting them, so a reader still scanning an older file list (a long
query, a consumer's open transaction) never loses a file under it.

Each step is its own transaction, re-run on a commit conflict with a concurrent writer
(`write_transaction`); compaction changes no row, so no write guard is taken.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone

import duckdb

from .backend import write_transaction
from .connection import WAREHOUSE_CATALOG
from .lake import is_lake

#: Snapshots younger than this are kept (time travel, slow readers); older ones expire.
DEFAULT_SNAPSHOT_RETENTION = timedelta(days=7)


@dataclass(frozen=True)
class MaintenanceReport:
    """What one maintenance pass did, as run metadata."""

    data_files_before: int
    data_files_after: int
    delete_files_before: int
    delete_files_after: int
    files_rewritten: int
    files_merged: int
    snapshots_before: int
    snapshots_after: int
    snapshots_expired: int
    files_deleted: int
    retention_days: float

    def as_metadata(self) -> dict[str, float]:
        """The report as flat metadata values."""
        return asdict(self)


def _file_counts(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    # The current snapshot's data and delete files, over every table.
    data, deletes = con.execute(
        f"SELECT coalesce(sum(file_count), 0), coalesce(sum(delete_file_count), 0) "
        f"FROM ducklake_table_info('{WAREHOUSE_CATALOG}')"
    ).fetchone()
    return int(data), int(deletes)


def _snapshot_count(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute(f"SELECT count(*) FROM ducklake_snapshots('{WAREHOUSE_CATALOG}')").fetchone()[0]


def _call(con: duckdb.DuckDBPyConnection, statement: str, params: list | None = None) -> list[tuple]:
    return write_transaction(lambda: con.execute(statement, params or []).fetchall())


def maintain_lake(
    con: duckdb.DuckDBPyConnection,
    *,
    retention: timedelta = DEFAULT_SNAPSHOT_RETENTION,
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
) -> MaintenanceReport:
    """Compact the lake `con` holds as catalog `warehouse` and expire snapshots older than
    `retention` (before `clock()`, the wall clock by default); see the module docstring."""
    if not is_lake(con):
        raise ValueError("maintain_lake needs a DuckLake warehouse; a DuckDB file needs no compaction")
    if retention < timedelta(0):
        raise ValueError("retention must not be negative")
    data_before, deletes_before = _file_counts(con)
    snapshots_before = _snapshot_count(con)
    catalog = f"'{WAREHOUSE_CATALOG}'"
    rewritten = _call(con, f"CALL ducklake_rewrite_data_files({catalog})")
    merged = _call(con, f"CALL ducklake_merge_adjacent_files({catalog})")
    # Each cutoff read when its step starts: with no retention, the files steps 1-2 just
    # replaced go too.
    expired = _call(con, f"CALL ducklake_expire_snapshots({catalog}, older_than => ?)", [clock() - retention])
    deleted = _call(con, f"CALL ducklake_cleanup_old_files({catalog}, older_than => ?)", [clock() - retention])
    data_after, deletes_after = _file_counts(con)
    return MaintenanceReport(
        data_files_before=data_before,
        data_files_after=data_after,
        delete_files_before=deletes_before,
        delete_files_after=deletes_after,
        # (schema, table, files_processed, files_created) per table
        files_rewritten=sum(row[2] for row in rewritten),
        files_merged=sum(row[2] for row in merged),
        snapshots_before=snapshots_before,
        snapshots_after=_snapshot_count(con),
        snapshots_expired=len(expired),
        files_deleted=len(deleted),
        retention_days=retention / timedelta(days=1),
    )


__all__ = ["DEFAULT_SNAPSHOT_RETENTION", "MaintenanceReport", "maintain_lake"]
