"""A delivery's last two lake writes (emptying its queue in a `finally`, releasing its
lease) re-run after a commit conflict like every other ledger write: a lost race neither
fails a delivery whose sends succeeded nor hides the delivery's own error.

The warehouse is an in-memory DuckDB whose connection loses the first commit of each of
those two writes the way a DuckLake commit does (rolled back, `Transaction conflict`);
the retry is the real `write_transaction`."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

import siro_assets.crm.delivery as delivery_module
from siro_assets.crm.lease import LEASE_TABLE
from siro_assets.crm.ledger import QUEUE_TABLE
from tests.crm_support import Bed, crm_block, extraction, recording

D1 = date(2026, 3, 1)
CONFLICT = duckdb.TransactionException(
    "TransactionContext Error: Failed to commit: Failed to commit DuckLake transaction.\n"
    'Transaction conflict - attempting to insert into table with index "2" - but another transaction has deleted from it'
)


class LosesFirstCommit:
    """A connection on which the first commit of a DELETE from each of `tables` conflicts:
    at COMMIT inside a transaction, at the statement itself in autocommit mode."""

    def __init__(self, con: duckdb.DuckDBPyConnection, tables: tuple[str, ...]) -> None:
        self._con, self._armed, self.conflicts = con, set(tables), []
        self._in_transaction, self._pending = False, None

    def execute(self, sql: str, *args):
        statement = " ".join(sql.split()).upper()
        target = next((t for t in self._armed if statement.startswith(f"DELETE FROM {t.upper()}")), None)
        if statement == "BEGIN TRANSACTION":
            self._in_transaction = True
        elif statement in ("COMMIT", "ROLLBACK"):
            self._in_transaction, pending, self._pending = False, self._pending, None
            if statement == "COMMIT" and pending is not None:
                self._con.execute("ROLLBACK")
                self._lose(pending)
        elif target is not None and not self._in_transaction:
            self._lose(target)
        elif target is not None:
            self._pending = target
        return self._con.execute(sql, *args)

    def _lose(self, table: str):
        self._armed.discard(table)
        self.conflicts.append(table)
        raise CONFLICT

    def __getattr__(self, name):
        return getattr(self._con, name)


def _bed() -> tuple[Bed, LosesFirstCommit]:
    bed = Bed()
    bed.load(D1, [recording(f"r{n}", D1, crm=crm_block("ic_http", opportunity=f"{n}"),
                            entityExtractions=[extraction(f"a{n}", ("Deal", "note"))]) for n in range(3)])
    real = bed.con
    bed.con = LosesFirstCommit(real, (QUEUE_TABLE, LEASE_TABLE))
    return bed, bed.con


def _left_behind(con: LosesFirstCommit) -> tuple[int, int]:
    count = "SELECT count(*) FROM siro.{}"
    return (con._con.execute(count.format(QUEUE_TABLE)).fetchall()[0][0],
            con._con.execute(count.format(LEASE_TABLE)).fetchall()[0][0])


def test_a_delivery_whose_last_writes_lose_a_commit_race_still_succeeds():
    bed, con = _bed()
    report = bed.run()
    assert report.delivered == 3 and not report.stopped
    assert sorted(con.conflicts) == sorted([QUEUE_TABLE, LEASE_TABLE])  # both lost once, both re-ran
    assert _left_behind(con) == (0, 0)


def test_the_deliverys_own_error_propagates_past_a_conflict_in_its_finally(monkeypatch):
    bed, con = _bed()

    def broken(self, settings, due):
        raise RuntimeError("the sink broke")

    monkeypatch.setattr(delivery_module.Delivery, "_deliver_route", broken)
    with pytest.raises(RuntimeError, match="the sink broke"):
        bed.run()
    assert sorted(con.conflicts) == sorted([QUEUE_TABLE, LEASE_TABLE])
    assert _left_behind(con) == (0, 0)


def test_a_release_that_fails_for_good_does_not_replace_the_deliverys_error(caplog):
    from contextlib import contextmanager
    from datetime import datetime, timezone

    from siro_assets.crm.lease import DeliveryLease
    from siro_assets.crm.ledger import ensure_ledger

    bed = Bed()
    ensure_ledger(bed.con)
    broken = {"now": False}

    @contextmanager
    def connect():
        if broken["now"]:
            raise duckdb.IOException("IO Error: the warehouse went away")
        yield bed.con

    lease = DeliveryLease(connect, "run1", now=lambda: datetime(2026, 3, 1, tzinfo=timezone.utc), ttl=3600)
    with pytest.raises(RuntimeError, match="the sink broke"), caplog.at_level("WARNING"):
        with lease:
            broken["now"] = True
            raise RuntimeError("the sink broke")
    assert "Could not release the delivery lease (IOException)" in caplog.text
    # Without an error of its own, the delivery still fails on an unreleased lease.
    broken["now"] = False
    with pytest.raises(duckdb.IOException):
        with lease:
            broken["now"] = True
