"""Issue 16 item 8 (bullets 1 and 2): work and storage grow with changes, not history.

Unchanged fields are a count per run (`siro.crm_delivery_runs`), not a log row each; due
fields are read back in pages of whole CRM records, never all at once.
"""

from __future__ import annotations

from datetime import date

from siro_assets.crm import delivery as delivery_module

from tests.crm_support import Bed, crm_block, extraction, recording

D1, D2 = date(2026, 1, 5), date(2026, 1, 6)


def sf_opp(n: int) -> str:
    return f"006{n:012d}AAA"


def _records(day: date, n: int, value: str = "v") -> list[dict]:
    return [recording(f"r{day.day}_{i}", day, crm=crm_block("ic_sf", opportunity=sf_opp(i)), entityExtractions=[
        extraction(f"{value} {i}", ("Opportunity", "Note__c"), name="a"),
        extraction(f"{value} {i}", ("Opportunity", "Description"), name="b")]) for i in range(1, n + 1)]


def test_unchanged_fields_are_a_count_per_run_not_a_log_row_each():
    bed = Bed()
    bed.load(D1, _records(D1, 3))
    assert bed.run([D1], run_id="first").delivered == 6
    report = bed.run([D1], run_id="second")
    assert (report.delivered, report.unchanged) == (0, 6)
    # Only attempts and their outcomes are logged: six deliveries, nothing for the second run.
    assert sorted({(outcome, run) for outcome, run in bed.log("outcome, run_id")}) == [("delivered", "first")]
    assert bed.con.execute(
        "SELECT run_id, unchanged, delivered, failed, stopped FROM siro.crm_delivery_runs ORDER BY started_at, run_id"
    ).fetchall() == [("first", 0, 6, 0, []), ("second", 6, 0, 0, [])]
    # The count is scoped to the run's days, as the log rows were.
    assert bed.run([D2], run_id="third").unchanged == 0


def test_due_fields_are_read_in_pages_of_whole_records(monkeypatch):
    monkeypatch.setattr(delivery_module, "PAGE_RECORDS", 2, raising=False)
    bed = Bed()
    bed.load(D1, _records(D1, 5))
    first = bed.delivery(run_id="paged")
    build = first.sinks
    prepared: list[list[tuple[str, str]]] = []
    built = []

    def recording_prepare(settings):
        sink = build(settings)
        built.append(sink)
        prepare = sink.prepare

        def spy(writes):
            prepared.append([(w.external_id, w.field_key) for w in writes])
            return prepare(writes)

        sink.prepare = spy
        return sink

    first.sinks = recording_prepare
    assert first.run([D1]).delivered == 10
    # Pages of at most two records, each record's two fields together, every field once.
    assert [len({e for e, _ in page}) for page in prepared] == [2, 2, 1]
    assert all(len(page) == 2 * len({e for e, _ in page}) for page in prepared)
    assert sorted(f for page in prepared for f in page) == sorted(
        (sf_opp(i), f) for i in range(1, 6) for f in ("description", "note__c"))
    # One sink for the run: its token and describe cache outlive a page.
    assert len(built) == 1
    assert len(bed.sf.journal.entries) == 10 and bed.sf.journal.resent_after_ack() == []
