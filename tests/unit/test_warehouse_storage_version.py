"""A warehouse written by a newer DuckDB is refused with a way out, and the way out keeps every row."""

from __future__ import annotations

import ast
import gzip
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from siro_assets.warehouse import storage_downgrade
from siro_assets.warehouse.connection import WarehouseLockTimeout, WarehouseVersionError, open_duckdb


def _warehouse(path: Path) -> None:
    con = open_duckdb(path, lock_timeout=1)
    con.execute("CREATE TABLE siro.crm_writeback_log AS SELECT range AS id, 'sent' AS status FROM range(500)")
    con.execute("CREATE TABLE siro.recordings AS SELECT range AS id FROM range(20)")
    con.close()


FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "warehouse_written_by_duckdb_2_0_1.duckdb.gz"


def test_a_file_from_a_newer_duckdb_is_refused_with_the_command_that_rewrites_it(tmp_path):
    # A real file from DuckDB 2.0.1 (storage version 999), gzipped: 1 KB instead of 268.
    path = tmp_path / "siro.duckdb"
    path.write_bytes(gzip.decompress(FIXTURE.read_bytes()))
    before = path.read_bytes()

    with pytest.raises(WarehouseVersionError) as refused:
        open_duckdb(path, lock_timeout=1)

    message = str(refused.value)
    assert "newer DuckDB" in message and storage_downgrade.__file__ in message and str(path) in message
    assert path.read_bytes() == before, "opening must not touch the file"


def test_the_downgrade_copies_every_table_and_keeps_the_original(tmp_path):
    path = tmp_path / "siro.duckdb"
    _warehouse(path)

    # Run as users run it: the file, under an interpreter, with no siro_assets import.
    done = subprocess.run([sys.executable, storage_downgrade.__file__, str(path)],
                          capture_output=True, text=True, cwd=tmp_path, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr

    backup = path.with_name(path.name + ".duckdb2-backup")
    assert backup.is_file()
    with open_duckdb(path, read_only=True, lock_timeout=1) as con:
        assert con.execute("SELECT count(*), count(DISTINCT id) FROM siro.crm_writeback_log").fetchall() == [(500, 500)]
        assert con.execute("SELECT count(*) FROM siro.recordings").fetchall() == [(20,)]
    with pytest.raises(FileExistsError):
        storage_downgrade.downgrade(path)


def test_rows_only_in_the_write_ahead_log_are_copied_and_the_log_moves_with_the_original(tmp_path):
    path = tmp_path / "siro.duckdb"
    _warehouse(path)
    con = duckdb.connect(str(path))
    con.execute("PRAGMA disable_checkpoint_on_shutdown")
    con.execute("SET checkpoint_threshold = '1TB'")
    con.execute("INSERT INTO siro.siro.crm_writeback_log SELECT 500 + range, 'sent' FROM range(7)")
    con.close()
    wal = path.with_name(path.name + ".wal")
    assert wal.exists(), "the setup must leave the last rows in the log only"

    backup = storage_downgrade.downgrade(path)

    assert not wal.exists(), "a stale log beside the new file would be replayed against it"
    assert backup.with_name(backup.name + ".wal").exists()
    with open_duckdb(path, read_only=True, lock_timeout=1) as con:
        assert con.execute("SELECT count(*) FROM siro.crm_writeback_log").fetchall() == [(507,)]


def test_the_downgrade_script_imports_nothing_but_duckdb_and_the_standard_library():
    tree = ast.parse(Path(storage_downgrade.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= {"__future__", "argparse", "os", "sys", "pathlib", "duckdb"}, imported


def test_a_corrupt_file_fails_at_once_instead_of_waiting_for_a_lock(tmp_path):
    path = tmp_path / "siro.duckdb"
    _warehouse(path)
    with path.open("r+b") as f:  # break the main header's checksum
        f.seek(12)
        f.write(b"\xff" * 8)
    with pytest.raises(duckdb.IOException, match="checksum"):
        open_duckdb(path, lock_timeout=600)


def test_a_file_another_process_holds_is_waited_for_then_named_as_locked(tmp_path):
    path = tmp_path / "siro.duckdb"
    _warehouse(path)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('held', flush=True); sys.stdin.read()", str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(WarehouseLockTimeout, match="stayed locked"):
            open_duckdb(path, lock_timeout=0.5)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
