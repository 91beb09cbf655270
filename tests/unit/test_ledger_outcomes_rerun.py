"""Recording a delivery's outcomes is safe to run again: the same transaction re-run (a
commit whose outcome was unknown, run once more) logs each outcome once and counts each
delivery once, on the file backend exactly as before otherwise."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import duckdb
import pytest

from siro_assets.crm import ledger
from siro_assets.crm.ledger import rows as ledger_rows
from siro_assets.crm.writes import DELIVERED, FAILED, FieldWrite, Outcome

T0 = datetime(2026, 3, 1, 9, tzinfo=timezone.utc)
WRITE = FieldWrite("ic", "opportunity", "o1", "stage", "Stage", "Deal", "v1", "r1", "k1")


@pytest.fixture
def con():
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    ledger.ensure_ledger(con)
    return con


def _state(con):
    return con.execute(f"SELECT deliveries, acked_delivery_key, last_outcome FROM {ledger.STATE_TABLE}").fetchall()


def _log(con):
    return con.execute(f"SELECT outcome, delivery_key FROM {ledger.LOG_TABLE} ORDER BY attempted_at").fetchall()


def test_the_same_outcome_recorded_twice_is_logged_and_counted_once(con):
    ledger.record_intent(con, [WRITE], "run-a", T0)
    for _ in range(2):
        ledger.record_outcomes(con, [Outcome(WRITE, DELIVERED, 200)], "http", "run-a", T0)
    assert _state(con) == [(1, WRITE.delivery_key, DELIVERED)]
    assert _log(con) == [(DELIVERED, WRITE.delivery_key)]


def test_a_transaction_that_committed_and_is_run_again_counts_once(con, monkeypatch):
    def commit_then_run_again(work):
        work()
        return work()

    ledger.record_intent(con, [WRITE], "run-a", T0)
    monkeypatch.setattr(ledger_rows, "write_transaction", commit_then_run_again)
    ledger.record_outcomes(con, [Outcome(WRITE, DELIVERED, 200)], "http", "run-a", T0)
    assert _state(con) == [(1, WRITE.delivery_key, DELIVERED)]
    assert len(_log(con)) == 1


def test_later_attempts_are_still_recorded_and_counted(con):
    ledger.record_intent(con, [WRITE], "run-a", T0)
    ledger.record_outcomes(con, [Outcome(WRITE, FAILED, 503, "unavailable", "try later")], "http", "run-a", T0)
    ledger.record_outcomes(con, [Outcome(WRITE, DELIVERED, 200)], "http", "run-a", T0 + timedelta(minutes=1))
    second = FieldWrite("ic", "opportunity", "o1", "stage", "Stage", "Deal", "v2", "r2", "k2")
    ledger.record_outcomes(con, [Outcome(second, DELIVERED, 200)], "http", "run-b", T0 + timedelta(hours=1))
    assert _state(con) == [(2, second.delivery_key, DELIVERED)]
    k1, k2 = WRITE.delivery_key, second.delivery_key
    assert _log(con) == [(FAILED, k1), (DELIVERED, k1), (DELIVERED, k2)]
