"""Rewrite a warehouse file written by DuckDB 2.x in the storage format DuckDB 1.5 reads.

siro-assets pins DuckDB 1.5.5 (docs/ARCHITECTURE.md, "The DuckDB version"). A warehouse
written while the project ran DuckDB 2.0 refuses to open in 1.5.5 ("created with a newer
version of DuckDB"), and it holds what cannot be fetched again: the CRM writeback ledger,
which is what keeps an acknowledged write from being sent twice. So the file is copied,
not rebuilt. This module imports nothing but DuckDB and the standard library, because it
runs under a DuckDB 2.x interpreter, outside the project's environment:

    python3 -m venv /tmp/duckdb2 && /tmp/duckdb2/bin/pip install 'duckdb>=2,<3'
    /tmp/duckdb2/bin/python <this file> data/siro.duckdb

The original is kept beside it as `<name>.duckdb2-backup` (its `.wal` too); run it with no writer running.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import duckdb

#: The storage format DuckDB 1.5.x reads and writes.
TARGET_STORAGE_VERSION = "v1.5.0"


def _literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def downgrade(path: Path) -> Path:
    """Copy every schema, table, view and sequence of `path` into a file in the 1.5 format,
    then swap it into place; returns the backup of the original."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no warehouse file at {path}")
    staged = path.with_name(path.name + ".downgrading")
    backup = path.with_name(path.name + ".duckdb2-backup")
    if backup.exists():
        raise FileExistsError(f"{backup} exists already: a previous downgrade kept it; move it away first")
    staged.unlink(missing_ok=True)
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH {_literal(path)} AS old (READ_ONLY)")
        con.execute(f"ATTACH {_literal(staged)} AS new (STORAGE_VERSION '{TARGET_STORAGE_VERSION}')")
        con.execute("COPY FROM DATABASE old TO new")
        tables = con.execute(
            "SELECT schema_name, table_name, estimated_size FROM duckdb_tables() WHERE database_name = 'old'"
        ).fetchall()
        for schema, table, _ in tables:
            before = con.execute(f'SELECT count(*) FROM old."{schema}"."{table}"').fetchall()[0][0]
            after = con.execute(f'SELECT count(*) FROM new."{schema}"."{table}"').fetchall()[0][0]
            if before != after:
                raise RuntimeError(f"{schema}.{table}: {before} rows in the original, {after} in the copy")
    finally:
        con.close()
    # The renames are on one directory: the original is never deleted, only moved aside.
    # Its write-ahead log goes with it: the copy already holds what the log held (the
    # read-only attach replays it), and a stale log beside the new file would be replayed
    # against a database it was not written for.
    wal, staged_wal = path.with_name(path.name + ".wal"), staged.with_name(staged.name + ".wal")
    if staged_wal.exists():
        raise RuntimeError(f"{staged_wal}: the copy was not checkpointed; {path} is unchanged")
    os.replace(path, backup)
    if wal.exists():
        os.replace(wal, backup.with_name(backup.name + ".wal"))
    os.replace(staged, path)
    return backup


def main(argv: list[str] | None = None) -> int:
    """CLI: downgrade one warehouse file in place, keeping the original as a backup."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("warehouse", type=Path, help="the DuckDB warehouse file, e.g. data/siro.duckdb")
    args = parser.parse_args(argv)
    backup = downgrade(args.warehouse)
    print(f"{args.warehouse}: rewritten for DuckDB 1.5 (DuckDB {duckdb.__version__}); original kept at {backup}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
