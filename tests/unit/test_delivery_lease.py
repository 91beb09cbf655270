"""The delivery lease (issue 16, item 5): one delivery at a time, taken over only once expired."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import duckdb
import pytest

from siro_assets.crm.lease import LEASE_TABLE, LEASE_TTL, LeaseHeld, release_lease, take_lease
from siro_assets.warehouse.schema import ensure_schema

T0 = datetime(2026, 3, 1, 9, tzinfo=timezone.utc)


@pytest.fixture
def con():
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    ensure_schema(con)
    return con


def test_a_live_lease_of_another_run_is_refused_naming_its_holder(con):
    take_lease(con, "run-a", T0)
    with pytest.raises(LeaseHeld, match="run-a") as held:
        take_lease(con, "run-b", T0 + LEASE_TTL - timedelta(seconds=1))
    assert held.value.holder == "run-a"


def test_the_holder_renews_and_an_expired_lease_is_taken_over(con):
    take_lease(con, "run-a", T0)
    take_lease(con, "run-a", T0 + timedelta(minutes=10))  # renewed: now good until T0 + 25 min
    with pytest.raises(LeaseHeld):
        take_lease(con, "run-b", T0 + timedelta(minutes=20))
    take_lease(con, "run-b", T0 + timedelta(minutes=26))
    assert con.execute(f"SELECT run_id FROM {LEASE_TABLE}").fetchall() == [("run-b",)]
    with pytest.raises(LeaseHeld):  # the old holder, back from a stall, cannot send on
        take_lease(con, "run-a", T0 + timedelta(minutes=27))


def test_release_frees_the_lease_only_for_its_holder(con):
    take_lease(con, "run-a", T0)
    release_lease(con, "run-b")
    with pytest.raises(LeaseHeld):
        take_lease(con, "run-b", T0)
    release_lease(con, "run-a")
    take_lease(con, "run-b", T0)
