"""Unchanged fields are counted per run, not logged per field (issue 16, item 8): the log
grows with attempts, not with the number of runs over unchanged days."""

from __future__ import annotations

from datetime import date

from siro_assets.crm.ledger import RUNS_TABLE
from tests.crm_support import SF_ID, Bed, crm_block, extraction, recording

D1, D2 = date(2026, 3, 1), date(2026, 3, 2)


def _runs(bed: Bed) -> dict[str, tuple]:
    rows = bed.con.execute(
        f"SELECT run_id, partitions, dry_run, unchanged, delivered, rejected, failed, would_send, stopped "
        f"FROM {RUNS_TABLE}").fetchall()
    return {row[0]: row[1:] for row in rows}


def test_unchanged_fields_are_a_count_on_the_runs_row_not_log_rows():
    bed = Bed()
    crm = crm_block("ic_sf", opportunity=SF_ID["opportunity"])
    bed.load(D1, [recording("r1", D1, crm=crm, entityExtractions=[
        extraction("Closed Won", ("Opportunity", "StageName")), extraction(3, ("Opportunity", "Quantity__c"), name="q")])])
    bed.load(D2, [recording("r2", D2, crm=crm_block("ic_http", opportunity="d2"),
                            entityExtractions=[extraction("A", ("Deal", "Stage"))])])
    assert bed.run([D1, D2], run_id="first").delivered == 3
    attempts = len(bed.log())
    for n in range(5):  # the sensor re-runs the same days: nothing changed
        report = bed.run([D1], run_id=f"again{n}")
        assert (report.delivered, report.unchanged) == (0, 2)
    bed.run([D1], run_id="dry", dry_run=True)
    assert len(bed.log()) == attempts == 3
    assert bed.log("outcome", "outcome NOT IN ('delivered')") == []
    assert _runs(bed) == {
        "first": ([D1, D2], False, 0, 3, 0, 0, 0, []),
        **{f"again{n}": ([D1], False, 2, 0, 0, 0, 0, []) for n in range(5)},
        "dry": ([D1], True, 2, 0, 0, 0, 0, []),
    }


def test_a_run_stopped_by_the_lease_has_its_row_naming_the_holder():
    from siro_assets.crm.lease import take
    from siro_assets.crm.ledger import ensure_ledger

    bed = Bed()
    bed.load(D1, [recording("r1", D1, crm=crm_block("ic_http", opportunity="d1"),
                            entityExtractions=[extraction("A", ("Deal", "Stage"))])])
    ensure_ledger(bed.con)
    take(bed.con, "holder", bed.clock.now(), ttl=300)
    bed.run(run_id="second", lease_wait_seconds=0)
    (stopped,) = _runs(bed)["second"][7]
    assert _runs(bed)["second"][:7] == (None, False, 0, 0, 0, 0, 0) and "run holder" in stopped
