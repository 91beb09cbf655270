"""A run process killed with SIGKILL in the middle of a lake commit (issue 19): its data
files are written and its catalog transaction in PostgreSQL has begun, but not committed.
The previous snapshot stays readable and intact, a rerun of the same partition ends equal
to the same work on a DuckDB file, no day is half-written, the writeback ledger holds no
stale intent, and no write reached the CRM twice.

The controlled point: before the run starts, the test takes `LOCK TABLE ducklake_snapshot
IN EXCLUSIVE MODE` in the catalog (reads still pass), so the run's first commit (the swap of
the fetched day) blocks on its first catalog write (`INSERT INTO ducklake_snapshot ...`, the
Parquet files already on disk and in no catalog row); the test sees it waiting in
`pg_stat_activity`, kills the process, then releases the lock.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import psycopg2
import pytest

from siro_assets.warehouse.backend import open_warehouse
from siro_assets.warehouse.lake import LakeSettings

from .test_two_machines import ROOT, WORLD, Bed, _snapshot, _times

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]


def _a_day_that_changes(t1: datetime, t2: datetime) -> str | None:
    """Of the four days before t2's, the one whose recordings change most between t1 and
    t2 (None if none does), so the rerun has something new to write."""
    def payloads(at: datetime, day: date) -> dict[str, dict]:
        start = datetime.combine(day, datetime.min.time(), tzinfo=timezone.utc)
        return {r["id"]: r for r in WORLD.recordings(at, created_from=start, created_to=start + timedelta(days=1))}

    def changed(day: date) -> int:
        before, after = payloads(t1, day), payloads(t2, day)
        return sum(before.get(rid) != record for rid, record in after.items())

    days = [t2.date() - timedelta(days=k) for k in range(1, 5)]
    best = max(days, key=changed)
    return best.isoformat() if changed(best) > 0 else None


def _steps_with_a_change() -> tuple[datetime, datetime, str]:
    """The two steps' instants (an hour and a half apart) and the day to write: the latest
    such window, from the two machines' test's, back an hour at a time, in which a day of
    the sparse test world changes (whatever the hour the test runs at, some hour and a
    half has none: late evenings did)."""
    t1, t2, _ = _times()
    for hours in range(48):
        back = timedelta(hours=hours)
        day = _a_day_that_changes(t1 - back, t2 - back)
        if day is not None:
            return t1 - back, t2 - back, day
    raise AssertionError(f"no recording changes in any 90 minutes of the 48 hours before {t2}")


def _blocked_commit(dsn: str, proc: subprocess.Popen, log, timeout: float = 600.0) -> str:
    """The catalog statement a lake commit of `proc` waits on (our lock), once it waits.

    Each poll in its own transaction: PostgreSQL serves pg_stat_activity from a snapshot
    taken once per transaction, and psycopg2's `with connection:` opens one even with
    autocommit on, so a watcher inside it saw the first, lock-free sample for ever.
    """
    deadline = time.monotonic() + timeout
    watcher = psycopg2.connect(dsn)
    watcher.autocommit = True
    try:
        with watcher.cursor() as cur:
            while time.monotonic() < deadline:
                cur.execute("SELECT query FROM pg_stat_activity WHERE datname = current_database() "
                            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()")
                rows = cur.fetchall()
                if rows:
                    return rows[0][0]
                assert proc.poll() is None, f"the run ended without committing: {log.read_text()[-3000:]}"
                time.sleep(0.05)
    finally:
        watcher.close()
    raise AssertionError("no lake commit reached the catalog in time")


def _uncatalogued_files(dsn: str, data_path: str) -> set[str]:
    """Parquet files under the lake's data path that no catalog row names (an uncommitted
    writer's). Readable under our EXCLUSIVE lock: it blocks writers, not readers."""
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT path FROM ducklake_data_file UNION ALL SELECT path FROM ducklake_delete_file")
            catalogued = {os.path.basename(row[0]) for row in cur.fetchall()}
    finally:
        conn.close()
    return {str(p.relative_to(data_path)) for p in Path(data_path).rglob("*.parquet") if p.name not in catalogued}


@pytest.mark.parametrize("lake", ["directory"], indirect=True)  # S3: the two-machine test
def test_a_run_killed_mid_commit_leaves_the_last_snapshot_and_a_rerun_ends_correct(lake, tmp_path):
    t1, t2, day = _steps_with_a_change()
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
        # Locked before the run starts (reads still pass): its first commit blocks, whenever
        # it comes, with no race against a fast fetch.
        lock, proc = psycopg2.connect(lake.catalog), None
        try:
            with lock.cursor() as cur:
                cur.execute("LOCK TABLE ducklake_snapshot IN EXCLUSIVE MODE")
            with open(log, "w") as out:
                proc = subprocess.Popen([sys.executable, "-m", "tests.lake.machine", "backfill", t2.isoformat(),
                                         str(time.time()), day], cwd=ROOT, env=env, stdout=out, stderr=out)
            statement = _blocked_commit(lake.catalog, proc, log)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            assert statement.lstrip().startswith('INSERT INTO "public".ducklake_snapshot'), statement[:200]
            assert "fetching 1 day(s)" in log.read_text()  # the swap of the fetched day, not a setup write
            # Parquet written, the catalog not yet told (pg_stat_activity cuts the statement
            # at 1 kB, so the data file rows are looked for on disk, not in its text).
            orphans = _uncatalogued_files(lake.catalog, lake.data_path)
            assert any("recordings" in path for path in orphans), orphans
            # While the dead writer's transaction still waits: the last snapshot reads whole.
            with open_warehouse(lake=lake, read_only=True) as con:
                assert _snapshot(con) == before
        finally:
            if proc is not None and proc.poll() is None:  # an assertion failed before the kill
                proc.kill()
                proc.wait(timeout=30)
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
    assert after != before, "the rerun changed nothing"
    differ = {name: {"lake only": sorted(set(rows) - set(expected[name]))[:3],
                     "reference only": sorted(set(expected[name]) - set(rows))[:3], "rows": (len(rows), len(expected[name]))}
              for name, rows in after.items() if rows != expected[name]}
    assert not differ, differ
    assert per_day[0][0] == per_day[0][1] > 0 and stale == [(0,)]
    writes = Counter((r["target"], field, json.dumps(value, sort_keys=True))
                     for r in requests for field, value in json.loads(r["body"]).items())
    assert writes and max(writes.values()) == 1, writes.most_common(3)
