"""A delivery's last two ledger writes on a lake (a real PostgreSQL catalog): another
writer commits a change to the same rows between their statement and their COMMIT, the
real DuckLake conflict follows, and the write re-runs and lands. (The injected-conflict
twin on DuckDB, which also fails on the code without the retry, is
`tests/integration/test_delivery_conflicts.py`.)"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from siro_assets.crm.lease import LEASE_TABLE, release, take
from siro_assets.crm.ledger import QUEUE_TABLE, drop_due, ensure_ledger
from siro_assets.warehouse.backend import open_warehouse

T0 = datetime(2026, 3, 1, 9, tzinfo=timezone.utc)
RUN = "run-a"


class RivalBeforeCommit:
    """`con`, on which the next COMMIT is preceded by `rival()` committing on another connection."""

    def __init__(self, con, rival) -> None:
        self._con, self._rival, self.commits = con, rival, 0

    def execute(self, sql: str, *args):
        if sql.strip().upper() == "COMMIT":
            self.commits += 1
            if self._rival is not None:
                rival, self._rival = self._rival, None
                rival()
        return self._con.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self._con, name)


@pytest.mark.parametrize("lake", ["directory"], indirect=True)
def test_dropping_the_queue_and_releasing_the_lease_re_run_after_a_real_lake_conflict(lake):
    con, other = open_warehouse(lake=lake), open_warehouse(lake=lake)
    try:
        ensure_ledger(con)
        take(con, RUN, T0, 300.0)
        con.execute(f"INSERT INTO {QUEUE_TABLE} (run_id, staged_at, record_no) VALUES (?, ?, 1), (?, ?, 1)",
                    [RUN, T0, "run-b", T0])

        # The heartbeat renews the lease (a MERGE rewriting its row) while the run releases it.
        racing = RivalBeforeCommit(con, lambda: take(other, RUN, T0 + timedelta(seconds=100), 300.0))
        release(racing, RUN)
        assert racing.commits >= 2  # the first COMMIT lost, the re-run committed
        assert con.execute(f"SELECT count(*) FROM {LEASE_TABLE}").fetchall() == [(0,)]

        # Another run's staging clears both runs' rows as stale while this run drops its own.
        stale = f"DELETE FROM {QUEUE_TABLE} WHERE staged_at < ?"
        racing = RivalBeforeCommit(con, lambda: other.execute(stale, [T0 + timedelta(days=1)]))
        drop_due(racing, RUN)
        assert racing.commits >= 2
        assert con.execute(f"SELECT count(*) FROM {QUEUE_TABLE}").fetchall() == [(0,)]
    finally:
        con.close()
        other.close()
