"""Intents and the delivery lease (issue 16, item 5), on an injected clock: a live run's
in-flight intents are neither adopted nor overwritten; an expired or released lease's are."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import duckdb
import pytest

from siro_assets.warehouse.connection import DEFAULT_SCHEMA, use_schema
from siro_assets.crm.lease import LIVE_HOLDER_SQL, release, take
from siro_assets.crm.ledger import STATE_TABLE, Orphan, ensure_ledger, log_orphans, orphaned_intents, record_intent
from siro_assets.crm.writes import FieldWrite

T0 = datetime(2026, 3, 1, 9, tzinfo=timezone.utc)
TTL = 300.0
LEASE_TTL = timedelta(seconds=TTL)
A, B = "run-a", "run-b"


def _write(n: int, value: str = "v") -> FieldWrite:
    return FieldWrite("ic", "opportunity", f"o{n}", "stage", "Stage", "Deal", value, f"r{n}", f"k{n}")


@pytest.fixture
def con():
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    use_schema(con, DEFAULT_SCHEMA, create=True)
    ensure_ledger(con)
    return con


def take_lease(con, run_id: str, now: datetime) -> None:
    assert take(con, run_id, now, TTL)[0] == run_id


def live_holder(con, now: datetime) -> str | None:
    return con.execute(f"SELECT {LIVE_HOLDER_SQL}", {"now": now}).fetchall()[0][0]


def _pending(con) -> list[tuple]:
    return con.execute(f"SELECT external_id, json(pending_value)::VARCHAR, pending_run_id FROM {STATE_TABLE} "
                       "ORDER BY ALL").fetchall()


def _a_in_flight(con) -> None:
    take_lease(con, A, T0)
    assert record_intent(con, [_write(1), _write(2)], A, T0) == {_write(1).identity, _write(2).identity}


def test_a_live_runs_intents_are_not_adoptable(con):
    _a_in_flight(con)
    assert live_holder(con, T0 + timedelta(minutes=1)) == A
    assert orphaned_intents(con, B, T0 + LEASE_TTL - timedelta(seconds=1)) == []
    log_orphans(con, [Orphan("ic", "opportunity", "o1", "Stage", '"v"', "r1", "k", A)], B, T0 + timedelta(minutes=1))
    assert {run for _, _, run in _pending(con)} == {A}


def test_a_renewed_lease_keeps_its_intents_past_the_first_expiry(con):
    _a_in_flight(con)
    take_lease(con, A, T0 + timedelta(minutes=4))
    assert orphaned_intents(con, B, T0 + LEASE_TTL + timedelta(minutes=1)) == []


def test_an_expired_leases_intents_are_adopted_once(con):
    _a_in_flight(con)
    later = T0 + LEASE_TTL + timedelta(seconds=1)
    orphans = orphaned_intents(con, B, later)
    assert sorted((o.external_id, o.pending_run_id) for o in orphans) == [("o1", A), ("o2", A)]
    take_lease(con, B, later)
    log_orphans(con, orphans, B, later)
    assert {run for _, _, run in _pending(con)} == {B}
    assert orphaned_intents(con, "run-c", later) == []  # B's own now, and B is live


def test_a_released_leases_intents_are_adoptable_at_once(con):
    _a_in_flight(con)
    release(con, A)
    assert live_holder(con, T0) is None
    assert len(orphaned_intents(con, B, T0)) == 2


def test_the_intent_upsert_never_overwrites_a_live_runs_intent(con):
    _a_in_flight(con)
    # B writes without the lease (a bug, or a stalled run): A's intents stand, B may send only o3.
    claimed = record_intent(con, [_write(1, "other"), _write(3, "other")], B, T0 + timedelta(minutes=1))
    assert claimed == {_write(3).identity}
    assert _pending(con) == [("o1", '"v"', A), ("o2", '"v"', A), ("o3", '"other"', B)]
    # Once A's lease has expired its intent is a dead run's: B's write takes the field.
    assert record_intent(con, [_write(1, "other")], B, T0 + LEASE_TTL + timedelta(seconds=1)) == {_write(1).identity}
    assert _pending(con)[0] == ("o1", '"other"', B)
