"""The ledger reads and writes rows by column name (issue 17, "The house itself"): each
row type's fields are the columns of the table it comes from, and the ledger is split
by job into modules small enough to read."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

from siro_assets.crm import ledger
from siro_assets.crm.writes import DELIVERED, FieldWrite, Outcome

T0 = datetime(2026, 3, 1, 9, tzinfo=timezone.utc)


@pytest.fixture
def con():
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    ledger.ensure_ledger(con)
    return con


def _columns(con, table: str) -> list[str]:
    return [row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()]


def _write(n: int) -> FieldWrite:
    return FieldWrite("ic", "opportunity", f"o{n}", "stage", "Stage", "Deal", f"v{n}", f"r{n}", f"k{n}")


def test_a_queued_fields_row_type_names_the_queue_tables_columns(con):
    bookkeeping = {"run_id", "staged_at", "record_no"}
    assert list(ledger.QueuedField._fields) == [c for c in _columns(con, ledger.QUEUE_TABLE) if c not in bookkeeping]


def test_an_orphan_is_read_by_name(con):
    ledger.record_intent(con, [_write(1)], "run-a", T0)
    (orphan,) = ledger.orphaned_intents(con, "run-b", T0 + timedelta(hours=1))
    assert (orphan.external_id, orphan.pending_value, orphan.pending_run_id) == ("o1", '"v1"', "run-a")
    assert set(orphan._fields) <= set(_columns(con, ledger.STATE_TABLE))


def test_every_batch_row_the_ledger_sends_is_keyed_by_its_tables_columns(con):
    outcome = Outcome(_write(1), DELIVERED, 200)
    state, log = set(_columns(con, ledger.STATE_TABLE)), set(_columns(con, ledger.LOG_TABLE))
    assert set(ledger.outcome_row(outcome, "http", "run-a", T0)) <= state | log | {"delivered"}
    assert set(ledger.intent_row(_write(1), "run-a", T0)) <= state
    assert set(ledger.outbox_row(_write(1), "run-a", T0)) <= set(_columns(con, ledger.OUTBOX_TABLE))


def test_the_ledger_round_trips_a_delivery_by_name(con):
    write = _write(1)
    ledger.record_intent(con, [write], "run-a", T0)
    ledger.record_outcomes(con, [Outcome(write, DELIVERED, 200)], "http", "run-a", T0)
    assert con.execute(f"SELECT json(acked_value)::VARCHAR, acked_delivery_key, deliveries, pending_value, "
                       f"last_http_status FROM {ledger.STATE_TABLE}").fetchall() == [
        ('"v1"', write.delivery_key, 1, None, 200)]
    assert con.execute(f"SELECT external_id, crm_field_name, outcome, delivery_key, sink FROM {ledger.LOG_TABLE}"
                       ).fetchall() == [("o1", "Stage", DELIVERED, write.delivery_key, "http")]


def test_no_ledger_module_is_over_300_lines():
    folder = Path(ledger.__file__).parent
    sizes = {p.name: len(p.read_text().splitlines()) for p in folder.glob("*.py")}
    assert folder.name == "ledger" and len(sizes) > 1, sizes
    assert max(sizes.values()) <= 300, sizes
