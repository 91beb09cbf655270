"""Issue 16 item 5, in one process: one delivery at a time, whatever launches it.

A second delivery started while the first is between sending a batch and recording its
outcome must neither adopt the first's in-flight intents nor send what the first is
sending. (tests/e2e/test_two_deliveries_at_once.py does it with two processes over HTTP.)
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import date, datetime, timezone

from siro_assets.crm import FieldWrite, ledger

from tests.crm_support import SF_ID, Bed, crm_block, extraction, recording

D1 = date(2026, 1, 5)


def sf_opp(n: int) -> str:
    return f"006{n:012d}AAA"


def _load(bed: Bed, records: int = 4) -> None:
    bed.load(D1, [
        *[recording(f"s{n}", D1, crm=crm_block("ic_sf", opportunity=sf_opp(n)), entityExtractions=[
            extraction(f"note {n}", ("Opportunity", "Note__c"), name="a"),
            extraction(f"step {n}", ("Opportunity", "Description"), name="b")]) for n in range(1, records + 1)],
        *[recording(f"h{n}", D1, crm=crm_block("ic_hs", opportunity=f"d{n}"), entityExtractions=[
            extraction(f"note {n}", ("Opportunity", "note"))]) for n in range(1, records + 1)],
    ])


class _Signals:
    """A logger for the second delivery: tells the test when it starts waiting for the lease."""

    def __init__(self) -> None:
        self.waiting = threading.Event()
        self.messages: list[str] = []

    def _note(self, message, *args, **kwargs) -> None:
        self.messages.append(str(message))
        if "lease" in str(message):
            self.waiting.set()

    info = warning = error = debug = _note


def test_a_delivery_started_while_another_is_sending_waits_and_resends_nothing():
    bed = Bed()
    _load(bed)
    first_sent = threading.Event()
    release_first = threading.Event()
    first = bed.delivery(run_id="first")
    build = first.sinks

    def held_after_the_first_batch(settings):
        sink = build(settings)
        send = sink.send

        def send_and_hold(batch):
            outcomes = send(batch)
            # The CRM has acknowledged this batch; its outcome is not recorded yet.
            if not first_sent.is_set():
                first_sent.set()
                assert release_first.wait(60)
            return outcomes

        sink.send = send_and_hold
        return sink

    first.sinks = held_after_the_first_batch
    reports = {}
    thread = threading.Thread(target=lambda: reports.setdefault("first", first.run([D1])))
    thread.start()
    assert first_sent.wait(60)

    signals = _Signals()
    second = bed.delivery(run_id="second", log=signals)
    # Before the fix the second ran to the end at once (no lease): let the first go on then.
    second_thread = threading.Thread(target=lambda: reports.setdefault("second", second.run([D1])))
    second_thread.start()
    while second_thread.is_alive() and not signals.waiting.is_set():
        signals.waiting.wait(0.05)
    release_first.set()
    second_thread.join(60)
    thread.join(60)
    assert not thread.is_alive() and not second_thread.is_alive()

    # No write the CRMs acknowledged went out again.
    assert bed.sf.journal.resent_after_ack() == [] and bed.hs.journal.resent_after_ack() == []
    assert len(bed.sf.journal.entries) == 8 and len(bed.hs.journal.entries) == 4
    # The second waited for the first's lease, then found nothing due.
    assert any("lease" in m and "first" in m for m in signals.messages), signals.messages
    assert (reports["first"].delivered, reports["second"].delivered) == (12, 0)
    # The log is consistent: one delivered row per field, all by the first run, no orphans.
    rows = bed.log("external_id, crm_field_name, outcome, run_id")
    assert Counter((e, f) for e, f, outcome, _ in rows if outcome == "delivered") == Counter(
        {(e, f): 1 for e, f, _, _ in rows})
    assert {(outcome, run) for _, _, outcome, run in rows} == {("delivered", "first")}
    assert bed.state("count(*) FILTER (pending_value IS NOT NULL)") == [(0,)]


def test_intents_of_a_live_run_are_never_adopted_or_overwritten():
    """A run that bypasses the lease (or outlived it) must not take over the intents of the
    run that holds it: they are no orphans, and the intent upsert keeps the holder's row."""
    bed = Bed()
    _load(bed, records=1)
    first = bed.delivery(run_id="first")
    build = first.sinks
    during = {}

    def intrude(settings):
        sink = build(settings)
        send = sink.send

        def send_with_an_intruder(batch):
            if not during:
                writes = [p.write for p in batch]
                claimed = ledger.record_intent(bed.con, writes, "intruder", bed.clock.now())
                during["state"] = bed.state("external_id, field_key, pending_run_id")
                # The holder's intents stand, and the intruder may send none of them.
                assert {run for _, _, run in during["state"]} <= {"first", None}, during["state"]
                assert claimed == set()
                during["orphans"] = ledger.orphaned_intents(bed.con, "intruder", bed.clock.now())
            return send(batch)

        sink.send = send_with_an_intruder
        return sink

    first.sinks = intrude
    assert first.run([D1]).delivered == 3
    assert {run for _, _, run in during["state"]} <= {"first", None}, during["state"]
    assert during["orphans"] == []
    assert bed.state("count(*) FILTER (pending_value IS NOT NULL)") == [(0,)]


def test_a_delivery_that_may_not_wait_stops_cleanly_and_says_who_holds_the_lease():
    bed = Bed()
    _load(bed, records=1)
    from siro_assets.crm import lease

    lease.take(bed.con, "other", bed.clock.now(), ttl=300)
    report = bed.run([D1], run_id="late", lease_wait_seconds=0)
    assert report.stopped == ["lease: held by run other"] and report.delivered == 0
    assert bed.sf.journal.entries == [] and bed.log() == []
    assert bed.con.execute("SELECT run_id, delivered, stopped FROM siro.crm_delivery_runs").fetchall() == [
        ("late", 0, ["lease: held by run other"])]


def test_a_killed_runs_lease_expires_then_its_intents_are_adopted_and_sent_once():
    """SIGKILL leaves the lease and the intents behind: the next run waits out the lease
    (on the injected clock), then adopts the intents as orphans and re-sends them."""
    bed = Bed()
    _load(bed, records=1)
    from siro_assets.crm import lease

    ledger.ensure_ledger(bed.con)
    lease.take(bed.con, "killed", bed.clock.now(), ttl=300)
    # As if SIGKILLed after writing its first intent: the lease and the intent stay behind.
    write = FieldWrite("ic_hs", "opportunity", "d1", "note", "note", "Opportunity", "note 1", "h1", "plan-key")
    assert ledger.record_intent(bed.con, [write], "killed", bed.clock.now()) == {write.identity}
    report = bed.run([D1], run_id="next", sleep=bed.clock.sleep, lease_ttl_seconds=300)
    assert report.delivered == 3 and report.stopped == []
    assert bed.clock.now() >= datetime(2026, 3, 1, 9, 5, tzinfo=timezone.utc)   # waited out the lease
    assert sorted(bed.log("crm_field_name, outcome, error_code, run_id")) == [
        ("Description", "delivered", None, "next"), ("Note__c", "delivered", None, "next"),
        ("note", "delivered", None, "next"), ("note", "failed", "outcome_unknown", "next")]
    assert bed.hs.journal.resent_after_ack() == [] and len(bed.hs.journal.entries) == 1
