"""A writer killed (SIGKILL) in the middle of the partition swap loses nothing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

from siro_assets.warehouse.connection import duckdb_connection
from tests.raw_payloads import load_raw, recording

ROOT = Path(__file__).resolve().parents[2]
DAY = date(2026, 1, 1)

# Runs the real `swap_partitions`, but parks forever right after its DELETE has run
# inside the open transaction, so the parent can kill the process at the worst moment.
_KILLED_WRITER = textwrap.dedent(
    """
    import sys, time, json
    from datetime import date
    from siro_assets.warehouse.connection import open_duckdb
    from siro_assets.warehouse.staging import RecordingsStage, swap_partitions

    db, day = sys.argv[1], date.fromisoformat(sys.argv[2])
    page = {"data": [{"id": "replacement", "createdAt": sys.argv[2] + "T05:00:00.000Z",
                      "updatedAt": sys.argv[2] + "T05:00:00.000Z", "deleted": False}], "cursor": None}
    stage = RecordingsStage()
    stage.add_page(json.dumps(page))
    stage.finalize([day])
    con = open_duckdb(db)
    real = con.execute

    class ParkAfterDelete:
        def execute(self, sql, *args):
            result = real(sql, *args)
            if sql.lstrip().startswith("DELETE FROM recordings"):
                print("deleted", flush=True)
                time.sleep(600)
            return result

    # allow_removals: the replacement lacks the day's ids, which is what lets the DELETE run.
    swap_partitions(ParkAfterDelete(), stage, [day], allow_removals=True)
    """
)


def test_sigkill_during_the_swap_keeps_the_previous_partition(tmp_path):
    db = tmp_path / "warehouse.duckdb"
    with duckdb_connection(db) as con:
        load_raw(con, [recording("a", DAY, hour=1), recording("b", DAY, hour=2)], [DAY])
    with duckdb_connection(db, read_only=True) as con:
        before = con.execute("SELECT id, payload FROM siro.recordings ORDER BY id").fetchall()

    writer = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(db), DAY.isoformat()],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = writer.stdout.readline()
        assert line.strip() == "deleted", writer.stderr.read()
    finally:
        writer.kill()
        writer.wait(timeout=30)

    with duckdb_connection(db, read_only=True) as con:
        after = con.execute("SELECT id, payload FROM siro.recordings ORDER BY id").fetchall()
    assert after == before
