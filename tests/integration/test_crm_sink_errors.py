"""Salesforce rejects that name no field, transient record codes, and stops that keep what
the CRM already accepted: against the fake CRMs served over HTTP on 127.0.0.1."""

from __future__ import annotations

from datetime import date

import pytest

from siro_assets.crm import Routing, outstanding
from fake_crms import (
    LOCKED, RECORD_UNAVAILABLE, RUNNING_TOO_LONG, UNKNOWN_EXCEPTION, FakeCrms, run_in_thread,
)

from tests.crm_support import Bed, crm_block, extraction, recording, settings

D1 = date(2026, 1, 5)


def sf_opp(n: int) -> str:
    return f"006{n:012d}AAA"


@pytest.fixture
def served():
    """Serve a bed's fakes over HTTP and route its sinks there (settings overrides merged in)."""
    stops = []

    def serve(bed: Bed, **overrides) -> Bed:
        base, stop = run_in_thread(FakeCrms(bed.sf, bed.hs, bed.http))
        stops.append(stop)
        urls = {"salesforce": {"login_url": f"{base}/salesforce"}, "hubspot": {"base_url": f"{base}/hubspot"},
                "http": {"url": f"{base}/http"}}
        bed.transport = None
        bed.routing = Routing(connections=settings(**{k: {**v, **overrides.get(k, {})} for k, v in urls.items()}))
        return bed

    yield serve
    for stop in stops:
        stop()


def patches(bed: Bed) -> int:
    return len([r for r in bed.sf.requests if r[0] == "PATCH"])


# --- item 7: Salesforce -------------------------------------------------------------------

def test_a_salesforce_reject_naming_no_field_resends_the_fields_one_at_a_time(served):
    bed = served(Bed(salesforce={
        "top_of_page_rules": {("Opportunity", "Competitor__c"): lambda v: "Competitors are tracked by Legal" if v == "Acme" else None},
        "deleted_ids": {sf_opp(3)},
    }))
    bed.load(D1, [
        recording("r1", D1, crm=crm_block("ic_sf", opportunity=sf_opp(1)), entityExtractions=[
            extraction("kept", ("Opportunity", "Note__c"), name="note"),
            extraction("Acme", ("Opportunity", "Competitor__c"), name="competitor"),
            extraction(5, ("Opportunity", "Amount"), name="amount")]),
        recording("r2", D1, crm=crm_block("ic_sf", opportunity=sf_opp(2)),
                  entityExtractions=[extraction("Acme", ("Opportunity", "Competitor__c"))]),
        recording("r3", D1, crm=crm_block("ic_sf", opportunity=sf_opp(3)), entityExtractions=[
            extraction("gone", ("Opportunity", "Note__c"), name="note"), extraction(1, ("Opportunity", "Amount"))]),
    ])
    report = bed.run()
    assert (report.delivered, report.rejected, report.failed) == (2, 4, 0)
    assert bed.sf.records == {("Opportunity", sf_opp(1)): {"Note__c": "kept", "Amount": 5}}
    assert sorted(bed.log("external_id, crm_field_name, outcome, error_code, error_message")) == [
        (sf_opp(1), "Amount", "delivered", None, None),
        (sf_opp(1), "Competitor__c", "rejected", "FIELD_CUSTOM_VALIDATION_EXCEPTION", "Competitors are tracked by Legal"),
        (sf_opp(1), "Note__c", "delivered", None, None),
        (sf_opp(2), "Competitor__c", "rejected", "FIELD_CUSTOM_VALIDATION_EXCEPTION", "Competitors are tracked by Legal"),
        (sf_opp(3), "Amount", "rejected", "ENTITY_IS_DELETED", "entity is deleted"),
        (sf_opp(3), "Note__c", "rejected", "ENTITY_IS_DELETED", "entity is deleted"),
    ]
    # One request for all three records, then r1's three fields alone, one request each
    # (Salesforce takes a record id once per request). A deleted record is not split.
    assert patches(bed) == 4
    assert bed.run().rejects_outstanding == 4 and patches(bed) == 4


@pytest.mark.parametrize("fault, code", [
    (UNKNOWN_EXCEPTION, "UNKNOWN_EXCEPTION"), (RECORD_UNAVAILABLE, "SERVER_UNAVAILABLE"),
    (RUNNING_TOO_LONG, "REQUEST_RUNNING_TOO_LONG"), (LOCKED, "UNABLE_TO_LOCK_ROW"),
])
def test_transient_salesforce_record_codes_are_retried_then_failed_never_rejected(served, fault, code):
    bed = served(Bed(), salesforce={"max_attempts": 3})
    bed.sf.faults.script = ["none", fault, fault]        # the describe goes through
    bed.load(D1, [recording("r", D1, crm=crm_block("ic_sf", opportunity=sf_opp(1)), entityExtractions=[
        extraction("v", ("Opportunity", "Note__c"), name="note"), extraction(7, ("Opportunity", "Amount"))])])
    report = bed.run()
    assert (report.delivered, report.rejected, report.failed) == (2, 0, 0) and patches(bed) == 3
    assert bed.sf.records == {("Opportunity", sf_opp(1)): {"Note__c": "v", "Amount": 7}}

    # Refused on every attempt: failed with Salesforce's code, due again next run.
    bed.sf.records.clear()
    bed.sf.faults.script = ["none", fault, fault, fault]
    bed.load(D1, [recording("r", D1, crm=crm_block("ic_sf", opportunity=sf_opp(1)), entityExtractions=[
        extraction("w", ("Opportunity", "Note__c"), name="note")])])
    report = bed.run()
    assert (report.delivered, report.rejected, report.failed) == (0, 0, 1) and patches(bed) == 6
    assert outstanding(bed.con) == [("failed", code, 1)]
    assert bed.run().delivered == 1 and bed.sf.records == {("Opportunity", sf_opp(1)): {"Note__c": "w"}}


# --- item 6: a stop keeps what the CRM accepted --------------------------------------------

def test_a_hubspot_401_while_splitting_a_400_batch_keeps_the_delivered_half(served):
    bed = served(Bed(hubspot={"validation_rules": {("deals", "note"): lambda v: "no swearing" if v == "bad" else None}}))
    deals = [f"d{n}" for n in range(4)]
    bed.load(D1, [recording(f"r{n}", D1, crm=crm_block("ic_hs", opportunity=d), entityExtractions=[
        extraction("bad" if d == "d2" else f"ok {d}", ("Deal", "note"))]) for n, d in enumerate(deals)])
    original, posts = bed.hs.handle, []

    def revoke_before_the_second_half(method, path, headers, body, base):
        if method == "POST":
            posts.append(path)
            if len(posts) == 3:              # 4 fail (400) -> [d0, d1] delivered -> [d2, d3]
                bed.hs.token = "revoked"
        return original(method, path, headers, body, base)

    bed.hs.handle = revoke_before_the_second_half
    report = bed.run()
    assert report.stopped == ["hubspot: INVALID_AUTHENTICATION"]
    assert (report.delivered, report.failed) == (2, 2)
    assert sorted(bed.log("external_id, outcome, error_code")) == [
        ("d0", "delivered", None), ("d1", "delivered", None),
        ("d2", "failed", "INVALID_AUTHENTICATION"), ("d3", "failed", "INVALID_AUTHENTICATION")]
    assert [r for r in bed.state("external_id, json(acked_value)::VARCHAR") if r[1]] == [("d0", '"ok d0"'), ("d1", '"ok d1"')]
    # With the token back, only what was not accepted goes again.
    bed.hs.token = "fake-hubspot-token"
    again = bed.run()
    assert (again.delivered, again.rejected) == (1, 1)
    assert bed.hs.journal.resent_after_ack() == []
    assert [e.record_id for e in bed.hs.journal.entries] == ["d0", "d1", "d3"]


def test_a_failed_salesforce_reauthentication_keeps_records_an_earlier_attempt_delivered(served):
    bed = served(Bed())
    bed.sf.faults.script = ["none", LOCKED]      # describe; the first record of the first update is locked
    bed.load(D1, [recording(f"r{n}", D1, crm=crm_block("ic_sf", opportunity=sf_opp(n)),
                            entityExtractions=[extraction(f"v{n}", ("Opportunity", "Note__c"))]) for n in (1, 2, 3)])
    original = bed.sf.handle

    def rotate_after_the_first_update(method, path, headers, body, base):
        answer = original(method, path, headers, body, base)
        if method == "PATCH":
            bed.sf.expire_tokens()                      # the retry needs a new session...
            bed.sf.client_secret = "rotated-secret"     # ...and the secret was rotated meanwhile
        return answer

    bed.sf.handle = rotate_after_the_first_update
    report = bed.run()
    assert report.stopped == ["salesforce: invalid_client"]
    assert (report.delivered, report.failed) == (2, 1)
    assert sorted(bed.log("external_id, outcome, error_code")) == [
        (sf_opp(1), "failed", "invalid_client"), (sf_opp(2), "delivered", None), (sf_opp(3), "delivered", None)]
    bed.sf.handle, bed.sf.client_secret = original, "fake-client-secret"
    assert bed.run().delivered == 1
    assert bed.sf.journal.resent_after_ack() == []
    assert sorted(e.record_id for e in bed.sf.journal.entries) == [sf_opp(1), sf_opp(2), sf_opp(3)]
