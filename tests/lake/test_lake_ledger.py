"""The CRM writeback ledger and the delivery lease on a lake (a real PostgreSQL catalog):
DuckLake has no PRIMARY KEY, so each upsert is a MERGE INTO on the key, and recording the
same intents, acknowledgements, outbox rows and lease twice leaves one row each."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import duckdb
import pytest

from siro_assets.crm.lease import LEASE_TABLE, take
from siro_assets.crm.ledger import (
    OUTBOX_TABLE, STATE_TABLE, ensure_ledger, queue_outbox, record_intent, record_outcomes,
)
from siro_assets.crm.writes import DELIVERED, FieldWrite, Outcome
from siro_assets.warehouse.backend import open_warehouse
from siro_assets.warehouse.lake import is_lake

T0 = datetime(2026, 3, 1, 9, tzinfo=timezone.utc)
RUN = "run-a"
WRITES = [FieldWrite("ic", "opportunity", f"o{n}", "stage", "Stage", "Deal", f"v{n}", f"r{n}", f"k{n}")
          for n in range(2)]


@pytest.mark.parametrize("lake", ["directory"], indirect=True)
def test_intents_and_acknowledgements_recorded_twice_read_back_once_on_the_lake(lake):
    con = open_warehouse(lake=lake)
    try:
        assert is_lake(con)
        ensure_ledger(con)
        ensure_ledger(con)  # a second delivery's start: the tables are there already
        for attempt in range(2):
            assert take(con, RUN, T0 + timedelta(seconds=attempt), 300.0)[0] == RUN
            claimed = record_intent(con, WRITES, RUN, T0)
            assert claimed == {("ic", "opportunity", w.external_id, "stage") for w in WRITES}
            queue_outbox(con, WRITES, RUN, T0)
        pending = con.execute(
            f"SELECT external_id, json(pending_value)::VARCHAR, pending_run_id, deliveries FROM {STATE_TABLE} "
            "ORDER BY ALL").fetchall()
        assert pending == [("o0", '"v0"', RUN, 0), ("o1", '"v1"', RUN, 0)]

        for _ in range(2):
            record_outcomes(con, [Outcome(w, DELIVERED, http_status=200) for w in WRITES], "http", RUN, T0)
        acked = con.execute(
            f"SELECT external_id, json(acked_value)::VARCHAR, acked_delivery_key IS NOT NULL, deliveries, "
            f"pending_run_id, last_outcome FROM {STATE_TABLE} ORDER BY ALL").fetchall()
        # The same outcomes recorded twice count once (an unknown commit run again).
        assert acked == [("o0", '"v0"', True, 1, None, DELIVERED), ("o1", '"v1"', True, 1, None, DELIVERED)]
        assert con.execute(f"SELECT count(*), count(DISTINCT delivery_key) FROM {OUTBOX_TABLE}").fetchall() == [(2, 2)]
        assert con.execute(f"SELECT lease, run_id, acquired_at FROM {LEASE_TABLE}").fetchall() == [("delivery", RUN, T0)]
    finally:
        con.close()


@pytest.mark.parametrize("lake", ["directory"], indirect=True)
def test_two_writers_queueing_the_same_new_delivery_at_once_leave_one_row(lake):
    # No PRIMARY KEY on a lake: without the write guard both inserts would commit.
    first, second = open_warehouse(lake=lake), open_warehouse(lake=lake)
    try:
        ensure_ledger(first)
        first.execute("BEGIN TRANSACTION")
        _upsert_outbox(first, WRITES[:1])  # inside the open transaction, not yet committed
        queue_outbox(second, WRITES[:1], "run-b", T0)  # commits first
        with pytest.raises(duckdb.Error):
            first.execute("COMMIT")  # the loser's whole transaction is what `_transaction` re-runs
        assert second.execute(f"SELECT count(*), any_value(run_id) FROM {OUTBOX_TABLE}").fetchall() == [(1, "run-b")]
    finally:
        first.close()
        second.close()


def _upsert_outbox(con, writes):
    from siro_assets.crm.ledger import outbox_row, upsert_outbox

    upsert_outbox(con, [outbox_row(w, RUN, T0) for w in writes])
