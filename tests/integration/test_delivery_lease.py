"""A delivery never sends while another live run holds the lease, nor adopts its intents."""

from __future__ import annotations

from datetime import date, timedelta

from siro_assets.crm.lease import LEASE_TTL, take_lease
from siro_assets.crm.writes import FieldWrite
from siro_assets.crm.ledger import ensure_ledger, record_intent
from tests.crm_support import Bed, crm_block, extraction, recording

D1 = date(2026, 3, 1)


def _bed() -> Bed:
    bed = Bed()
    bed.load(D1, [recording(f"r{n}", D1, crm=crm_block("ic_http", opportunity=f"o{n}"),
                            entityExtractions=[extraction(f"stage {n}", ("Deal", "Stage"))]) for n in range(5)])
    return bed


def test_a_second_delivery_sends_nothing_while_another_run_holds_the_lease():
    bed = _bed()
    ensure_ledger(bed.con)
    take_lease(bed.con, "live-run", bed.clock.now())
    report = bed.run(run_id="second")
    assert bed.http.journal.entries == []
    assert report.delivered == 0 and any("live-run" in s for s in report.stopped)
    # The lease lapses (its run died): the next delivery takes over and sends every write once.
    bed.clock.advance(LEASE_TTL + timedelta(seconds=1))
    report = bed.run(run_id="third")
    assert report.delivered == 5 and len(bed.http.journal.entries) == 5


def test_a_live_runs_in_flight_intents_are_not_adopted():
    bed = _bed()
    ensure_ledger(bed.con)
    live = FieldWrite("ic_http", "opportunity", "o0", "stage", "Stage", "Deal", "stage 0", "r0", "k-live")
    take_lease(bed.con, "live-run", bed.clock.now())
    record_intent(bed.con, [live], "live-run", bed.clock.now())
    bed.run(run_id="second")
    assert bed.log(where="outcome = 'failed' AND error_code = 'outcome_unknown'") == []
    assert bed.http.journal.entries == []


def test_reruns_with_nothing_changed_add_no_log_rows_only_counts():
    """Issue 16, item 8: the log grows with attempts, not with runs over unchanged fields."""
    bed = _bed()
    assert bed.run([D1]).delivered == 5
    rows = len(bed.log())
    for n in range(3):
        report = bed.run([D1])
        assert (report.delivered, report.unchanged) == (0, 5)
    assert len(bed.log()) == rows
    assert bed.log(where="outcome = 'skipped_unchanged'") == []
