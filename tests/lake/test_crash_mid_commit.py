"""A run process killed with SIGKILL in the middle of a lake commit (issue 19): its data
files are written and its catalog transaction in PostgreSQL has begun, but not committed.
The previous snapshot stays readable and intact, a rerun of the same partition ends equal
to the same work on a DuckDB file, no day is half-written, the writeback ledger holds no
stale intent, and no write reached the CRM twice.

The controlled point: once the run fetches, the test takes `LOCK TABLE ducklake_snapshot
IN EXCLUSIVE MODE` in the catalog (reads still pass), so the run's next commit blocks on its first catalog
write (`INSERT INTO ducklake_snapshot ...`, the Parquet files already on disk); the test
sees it waiting in `pg_stat_activity`, kills the process, then releases the lock.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta

import psycopg2
import pytest

from siro_assets.warehouse.backend import open_warehouse
from siro_assets.warehouse.lake import LakeSettings

from .test_two_machines import ROOT, Bed, _snapshot, _times

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]


def _blocked_commit(dsn: str, proc: subprocess.Popen, log, timeout: float = 600.0) -> str:
    """The catalog statement a lake commit of `proc` waits on (our lock), once it waits."""
    deadline = time.monotonic() + timeout
    with psycopg2.connect(dsn) as watcher:
        watcher.autocommit = True
        with watcher.cursor() as cur:
            while time.monotonic() < deadline:
                cur.execute("SELECT query FROM pg_stat_activity WHERE datname = current_database() "
                            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()")
                rows = cur.fetchall()
                if rows:
                    return rows[0][0]
                assert proc.poll() is None, f"the run ended without committing: {log.read_text()[-3000:]}"
                time.sleep(0.05)
    raise AssertionError("no lake commit reached the catalog in time")


@pytest.mark.skip(reason="unfinished (issue 19 item 3): with the catalog lock held, the run stalls after "
                  "'fetching' and never reaches a commit the watcher sees; diagnose before enabling")
@pytest.mark.parametrize("lake", ["directory"], indirect=True)  # S3: the two-machine test
def test_a_run_killed_mid_commit_leaves_the_last_snapshot_and_a_rerun_ends_correct(lake, tmp_path):
    t1, t2, _ = _times()
    day = (t2.date() - timedelta(days=1)).isoformat()
    warehouse = {"SIRO_WAREHOUSE": "ducklake", "SIRO_DUCKLAKE_CATALOG": lake.catalog,
                 "SIRO_DUCKLAKE_DATA_PATH": lake.data_path}
    bed = Bed(tmp_path)
    try:
        first_day = t2.date() - timedelta(days=10)
        env = bed.machine_env("machine", warehouse, first_day)
        bed.step(t1, [(env, ["backfill", day])])
        with open_warehouse(lake=LakeSettings(catalog=lake.catalog, data_path=lake.data_path), read_only=True) as con:
            before = _snapshot(con)

        # The day again, an hour later (its recordings changed), killed at its first commit.
        bed.clock.set(t2)
        log = tmp_path / "killed-run.log"
        with open(log, "w") as out:
            proc = subprocess.Popen([sys.executable, "-m", "tests.lake.machine", "backfill", t2.isoformat(),
                                     str(time.time()), day], cwd=ROOT, env=env, stdout=out, stderr=out)
        # Locked once the run fetches (its connections are open): held from its start,
        # the run never reached a commit in 10 minutes (not understood yet).
        while "fetching 1 day(s)" not in log.read_text():
            assert proc.poll() is None, log.read_text()[-3000:]
            time.sleep(0.05)
        lock = psycopg2.connect(lake.catalog)
        try:
            with lock.cursor() as cur:
                cur.execute("LOCK TABLE ducklake_snapshot IN EXCLUSIVE MODE")
            statement = _blocked_commit(lake.catalog, proc, log)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            assert statement.lstrip().startswith('INSERT INTO "public".ducklake_snapshot'), statement[:200]
            assert "ducklake_data_file" in statement  # Parquet written, the catalog not yet told
            # While the dead writer's transaction still waits: the last snapshot reads whole.
            with open_warehouse(lake=lake, read_only=True) as con:
                assert _snapshot(con) == before
        finally:
            lock.rollback()  # the dead client's transaction now fails and rolls back
            lock.close()
        with open_warehouse(lake=lake, read_only=True) as con:
            assert _snapshot(con) == before

        bed.step(t2, [(env, ["backfill", day])])  # the rerun
        requests = list(bed.crm.requests)
        reference = bed.machine_env("reference", {}, first_day)
        bed.step(t1, [(reference, ["backfill", day])])
        bed.step(t2, [(reference, ["backfill", day])])
    finally:
        bed.close()

    with open_warehouse(lake=lake, read_only=True) as con:
        after = _snapshot(con)
        per_day = con.execute("SELECT count(*), count(DISTINCT id) FROM siro.recordings").fetchall()
        stale = con.execute("SELECT count(*) FROM siro.crm_writeback_state WHERE pending_value IS NOT NULL "
                            "OR pending_run_id IS NOT NULL").fetchall()
    with open_warehouse(tmp_path / "reference" / "siro.duckdb", read_only=True) as con:
        expected = _snapshot(con)
    assert after != before and after == expected
    assert per_day[0][0] == per_day[0][1] > 0 and stale == [(0,)]
    writes = Counter((r["target"], field, json.dumps(value, sort_keys=True))
                     for r in requests for field, value in json.loads(r["body"]).items())
    assert writes and max(writes.values()) == 1, writes.most_common(3)
