"""CRM writebacks when the CRM says no or breaks: rejects with reasons, batch splits,
207s, rate limits, token expiry, quota, a crash between send and log, and three runs
under 20% faults."""

from __future__ import annotations

import copy
import random
from datetime import date, timedelta

import pytest

from siro_assets.crm import Routing, outstanding
from fake_crms import DISCONNECT, LOCKED, LOST_RESPONSE, RATE_LIMIT, SERVER_ERROR
from fake_crms.schemas import SALESFORCE_OBJECTS

from tests.crm_support import SF_ID, Bed, crm_block, extraction, recording, settings

D1, D2, D3 = date(2026, 1, 5), date(2026, 1, 6), date(2026, 1, 7)
OPP = SF_ID["opportunity"]


def sf_opp(n: int) -> str:
    return f"006{n:012d}AAA"


def test_rejects_before_sending_name_their_reason_and_cost_no_write():
    bed = Bed()
    bed.load(D1, [recording("r", D1, crm=crm_block("ic_sf", opportunity=OPP), entityExtractions=[
        extraction("x", ("Opportunity", "No_Such__c"), name="a"),
        extraction("x", ("Opportunity", "CreatedDate"), name="b"),
        extraction("not a number", ("Opportunity", "Amount"), name="c"),
        extraction("Maybe", ("Opportunity", "StageName"), name="d"),
        extraction("much too long", ("Opportunity", "Short__c"), name="e"),
        extraction("2026-13-45", ("Opportunity", "CloseDate"), name="f"),
    ])])
    report = bed.run()
    assert report.rejected == 6 and report.delivered == 0
    assert sorted(bed.log("crm_field_name, error_code")) == [
        ("Amount", "invalid_value"), ("CloseDate", "invalid_value"), ("CreatedDate", "not_updateable"),
        ("No_Such__c", "unknown_field"), ("Short__c", "invalid_value"), ("StageName", "invalid_value")]
    messages = dict(bed.log("crm_field_name, error_message"))
    assert "13 characters, the field holds 10" in messages["Short__c"]
    assert [r for r in bed.sf.requests if r[0] == "PATCH"] == []
    # Not re-tried while value and configuration stay; the check keeps reporting them.
    again = bed.run()
    assert again.rejected == 0 and again.rejects_outstanding == 6 and len(bed.log()) == 6
    assert {code for _, code, _ in outstanding(bed.con)} == {"invalid_value", "not_updateable", "unknown_field"}


def test_salesforce_record_rejects_resend_the_other_fields():
    bed = Bed(salesforce={
        "validation_rules": {("Opportunity", "Amount"): lambda v: "Amount must be positive" if v < 0 else None},
        "deleted_ids": {sf_opp(2)},
    })
    bed.load(D1, [
        recording("r1", D1, crm=crm_block("ic_sf", opportunity=sf_opp(1)), entityExtractions=[
            extraction(-5, ("Opportunity", "Amount"), name="amount"),
            extraction("kept", ("Opportunity", "Note__c"), name="note")]),
        recording("r2", D1, crm=crm_block("ic_sf", opportunity=sf_opp(2)),
                  entityExtractions=[extraction("gone", ("Opportunity", "Note__c"))]),
        recording("r3", D1, crm=crm_block("ic_sf", opportunity="006BAD"),
                  entityExtractions=[extraction("bad id", ("Opportunity", "Note__c"))]),
    ])
    report = bed.run()
    assert (report.delivered, report.rejected) == (1, 3)
    assert bed.sf.records == {("Opportunity", sf_opp(1)): {"Note__c": "kept"}}
    assert sorted(bed.log("external_id, crm_field_name, outcome, error_code")) == [
        ("006000000000001AAA", "Amount", "rejected", "FIELD_CUSTOM_VALIDATION_EXCEPTION"),
        ("006000000000001AAA", "Note__c", "delivered", None),
        ("006000000000002AAA", "Note__c", "rejected", "ENTITY_IS_DELETED"),
        ("006BAD", "Note__c", "rejected", "MALFORMED_ID"),
    ]
    assert "Amount must be positive" in bed.log("error_message", "crm_field_name = 'Amount'")[0][0]
    # A fixed value is sent; the rejects that still stand are not.
    bed.load(D1, [recording("r1", D1, crm=crm_block("ic_sf", opportunity=sf_opp(1)), entityExtractions=[
        extraction(5, ("Opportunity", "Amount"), name="amount"), extraction("kept", ("Opportunity", "Note__c"))]),
        recording("r2", D1, crm=crm_block("ic_sf", opportunity=sf_opp(2)),
                  entityExtractions=[extraction("gone", ("Opportunity", "Note__c"))])])
    second = bed.run()
    assert (second.delivered, second.rejects_outstanding) == (1, 1)
    assert bed.sf.records[("Opportunity", sf_opp(1))] == {"Note__c": "kept", "Amount": 5}
    # After the record is restored in the CRM, an operator re-tries the rejects.
    bed.sf.deleted_ids.clear()
    assert bed.run(retry_rejects=True).delivered == 1


def test_salesforce_unable_to_lock_row_is_retried():
    bed = Bed()
    bed.sf.faults.script = ["none", LOCKED, LOCKED]   # the describe call goes through
    bed.load(D1, [recording("r", D1, crm=crm_block("ic_sf", opportunity=OPP), entityExtractions=[extraction("v", ("Opportunity", "Note__c"))])])
    report = bed.run()
    assert report.delivered == 1 and report.failed == 0
    assert len([r for r in bed.sf.requests if r[0] == "PATCH"]) == 3


def test_hubspot_splits_a_failing_batch_to_isolate_the_bad_input():
    bed = Bed(hubspot={"validation_rules": {("deals", "note"): lambda v: "no swearing" if v == "bad" else None}})
    deals = [f"d{n:02d}" for n in range(8)]
    bed.load(D1, [
        recording(f"r{n}", D1, crm=crm_block("ic_hs", opportunity=d), entityExtractions=[
            extraction("bad" if d == "d05" else f"ok {d}", ("Deal", "note")),
            extraction(n, ("Deal", "amount"), name="amount")])
        for n, d in enumerate(deals)
    ])
    report = bed.run()
    assert (report.delivered, report.rejected) == (15, 1)
    assert bed.hs.records[("deals", "d05")] == {"amount": "5"}   # its other property still went
    assert all(bed.hs.records[("deals", d)]["note"] == f"ok {d}" for d in deals if d != "d05")
    assert bed.log("external_id, crm_field_name, error_code", "outcome = 'rejected'") == [("d05", "note", "VALIDATION_RULE")]
    posts = [n for method, _, n in bed.hs.requests if method == "POST"]
    # 8 fails -> 4 good, 4 fail -> 2 fail (d04 good, d05 alone, then its good property) -> 2 good.
    assert posts == [8, 4, 4, 2, 1, 1, 1, 2]


def test_hubspot_207_rejects_the_missing_ids_and_delivers_the_rest():
    bed = Bed(hubspot={"missing_ids": {"d2"}})
    bed.load(D1, [recording(f"r{d}", D1, crm=crm_block("ic_hs", opportunity=d), entityExtractions=[extraction("x", ("Deal", "note"))])
                  for d in ("d1", "d2", "d3")])
    report = bed.run()
    assert (report.delivered, report.rejected) == (2, 1)
    assert bed.log("external_id, outcome, error_code, http_status", "outcome = 'rejected'") == [("d2", "rejected", "OBJECT_NOT_FOUND", 207)]


def test_hubspot_429_waits_out_the_window_under_a_client_pace():
    bed = Bed(hubspot={"requests_per_window": 3},
              routing=Routing(connections=settings(hubspot={"batch_size": 1, "requests_per_second": 100})))
    bed.load(D1, [recording(f"r{n}", D1, crm=crm_block("ic_hs", opportunity=f"d{n}"), entityExtractions=[extraction("x", ("Deal", "note"))])
                  for n in range(6)])
    start = bed.clock.now()
    report = bed.run()
    assert report.delivered == 6 and report.rate_limited >= 1
    assert report.rate_limited == bed.hs.rate_limited
    assert bed.clock.now() - start >= timedelta(seconds=10)
    # The default pace (10 requests/s) spaces the calls on the clock.
    paced = Bed()
    paced.load(D1, [recording(f"r{n}", D1, crm=crm_block("ic_hs", opportunity=f"d{n}"),
                              entityExtractions=[extraction("x", ("Deal", "note" if n % 2 else "name"))]) for n in range(4)])
    t0 = paced.clock.now()
    paced.run(routing=Routing(connections=settings(hubspot={"batch_size": 1})))
    calls = paced.hs.requests
    assert len(calls) == 5 and paced.clock.now() - t0 >= timedelta(seconds=0.4)  # 5 calls, 0.1 s apart


def test_salesforce_token_expiry_reauthenticates_once():
    bed = Bed()
    bed.load(D1, [recording("r", D1, crm=crm_block("ic_sf", opportunity=OPP), entityExtractions=[extraction("v1", ("Opportunity", "Note__c"))])])
    delivery = bed.delivery()
    factory = delivery.sinks
    built = []
    delivery.sinks = lambda s: built.append(factory(s)) or built[-1]
    original_prepare = None

    def expire_after_describe(writes):
        prepared = original_prepare(writes)
        bed.sf.expire_tokens()     # the session ends between describe and the update
        return prepared

    real = delivery._through

    def through(sink, writes, by_identity):
        nonlocal original_prepare
        original_prepare = sink.prepare
        sink.prepare = expire_after_describe
        return real(sink, writes, by_identity)

    delivery._through = through
    report = delivery.run()
    assert report.delivered == 1
    assert bed.sf.tokens_issued == 2
    assert [r[1].rsplit("/", 1)[-1] for r in bed.sf.requests] == ["token", "describe", "sobjects", "token", "sobjects"]


def test_salesforce_bad_credentials_stop_without_sending():
    bed = Bed(routing=Routing(connections=settings(salesforce={"client_secret": "wrong-secret-value"})))
    bed.load(D1, [recording("r", D1, crm=crm_block("ic_sf", opportunity=OPP), entityExtractions=[extraction("v", ("Opportunity", "Note__c"))])])
    report = bed.run()
    assert report.stopped == ["salesforce: invalid_client"] and report.delivered == 0
    assert "wrong-secret-value" not in repr(report) and "wrong-secret-value" not in str(bed.log("*"))


def test_salesforce_request_limit_stops_cleanly_and_the_rest_waits():
    bed = Bed(salesforce={"daily_limit": 3}, routing=Routing(connections=settings(salesforce={"batch_size": 1})))
    bed.load(D1, [recording(f"r{n}", D1, crm=crm_block("ic_sf", opportunity=sf_opp(n)), entityExtractions=[extraction("v", ("Opportunity", "Note__c"))])
                  for n in range(1, 6)])
    report = bed.run()
    # describe + 2 updates fit the quota; the third update hits the limit.
    assert (report.delivered, report.failed) == (2, 1) and report.stopped == ["salesforce: REQUEST_LIMIT_EXCEEDED"]
    assert len(bed.sf.records) == 2
    assert outstanding(bed.con) == [("failed", "REQUEST_LIMIT_EXCEEDED", 1)]
    bed.sf.daily_limit = None    # a new day
    assert bed.run().delivered == 3
    assert len(bed.sf.records) == 5 and outstanding(bed.con) == []


class Crash(BaseException):
    """The process dies (a BaseException, like SystemExit, so nothing catches it)."""


def crash_after_send(factory):
    def build(settings):
        sink = factory(settings)
        send = sink.send

        def send_then_die(batch):
            send(batch)
            raise Crash()

        sink.send = send_then_die
        return sink

    return build


@pytest.mark.parametrize("connection", ["ic_sf", "ic_http", "ic_outbox"])
def test_a_crash_between_send_and_log(connection):
    bed = Bed()
    bed.load(D1, [recording("r", D1, crm=crm_block(connection, opportunity=OPP),
                            entityExtractions=[extraction("v", ("Opportunity", "Note__c"))])])
    delivery = bed.delivery(run_id="crashed")
    delivery.sinks = crash_after_send(delivery.sinks)
    with pytest.raises(Crash):
        delivery.run()
    # The intent survives: the field is not believed delivered, and it is due.
    assert bed.state("json(acked_value)::VARCHAR, json(pending_value)::VARCHAR, pending_run_id") == [(None, '"v"', "crashed")]
    assert bed.log() == []
    report = bed.run()
    assert report.delivered == 1
    assert sorted(bed.log("outcome, error_code, run_id")) == [("delivered", None, "run2"), ("failed", "outcome_unknown", "run2")]
    assert bed.state("json(acked_value)::VARCHAR, pending_value, deliveries") == [('"v"', None, 1)]
    if connection == "ic_http":
        keys = [r["key"] for r in bed.http.requests]
        assert len(keys) == 2 and keys[0] == keys[1]         # the same delivery, the same key
        assert len(bed.http.journal.entries) == 1             # replayed, not applied twice
    if connection == "ic_outbox":
        assert len(bed.outbox()) == 1
    assert bed.run().delivered == 0


def _fields(rec):
    crm = rec["crm"]
    return {(crm["integrationConnectionId"], crm["opportunity"]["externalId"], m["crmFieldName"].lower())
            for x in rec["entityExtractions"] for m in x["mappings"]}


def _truth(recordings):
    """The rule, in Python: per field, the newest live recording's value."""
    best = {}
    for rec in recordings:
        if rec.get("deleted"):
            continue
        crm = rec["crm"]
        for x in rec["entityExtractions"]:
            for m in x["mappings"]:
                key = (crm["integrationConnectionId"], crm["opportunity"]["externalId"], m["crmFieldName"].lower())
                order = (rec["createdAt"], rec["id"])
                if key not in best or order >= best[key][0]:
                    best[key] = (order, x["value"])
    return {k: v for k, (_, v) in best.items()}


def test_three_runs_under_twenty_percent_faults_end_exactly_as_the_rule_says():
    kinds = {"salesforce": (SERVER_ERROR, DISCONNECT, LOST_RESPONSE, LOCKED),
             "hubspot": (SERVER_ERROR, DISCONNECT, LOST_RESPONSE, RATE_LIMIT),
             "http": (SERVER_ERROR, DISCONNECT, LOST_RESPONSE)}
    bed = Bed(fault_rate=0.2, fault_seed=3, fault_kinds=kinds,
              routing=Routing(connections=settings(salesforce={"batch_size": 4}, hubspot={"batch_size": 3})))
    rng = random.Random(11)
    connections = {"ic_sf": lambda n: sf_opp(n), "ic_hs": lambda n: f"d{n}", "ic_http": lambda n: f"o/{n}"}
    fields = {"ic_sf": ("Note__c", "Stage__c"), "ic_hs": ("note", "name"), "ic_http": ("Note", "Stage")}
    days = {D1: [], D2: [], D3: []}
    serial = 0

    def add(day, n_records):
        nonlocal serial
        for _ in range(n_records):
            serial += 1
            connection = rng.choice(sorted(connections))
            target = rng.randrange(12)
            field = rng.choice(fields[connection])
            days[day].append(recording(
                f"rec{serial:03d}", day, hour=rng.randrange(24),
                crm=crm_block(connection, opportunity=connections[connection](target)),
                entityExtractions=[extraction(rng.choice(["A", "B", "C"]), ("Opportunity", field))]))

    for run_number, day in enumerate((D1, D2, D3)):
        add(day, 60)
        if run_number:
            # Later days delete some older recordings and re-ingest those days.
            for older in [d for d in days if d < day]:
                for rec in rng.sample(days[older], 4):
                    rec["deleted"] = True
                bed.load(older, days[older])
        bed.load(day, days[day])
        bed.run(list(days))

    everything = [r for recs in days.values() for r in recs]
    truth = _truth(everything)
    crm_state = {}
    for (obj, rid), values in bed.sf.records.items():
        crm_state.update({("ic_sf", rid, f.lower()): v for f, v in values.items()})
    for (obj, rid), values in bed.hs.records.items():
        crm_state.update({("ic_hs", rid, f.lower()): v for f, v in values.items()})
    for (model, rid), values in bed.http.records.items():
        crm_state.update({("ic_http", rid, f.lower()): v for f, v in values.items()})
    # Fields with a live recording hold its value; a field whose recordings were all
    # deleted keeps what it had (nothing clears a CRM value).
    assert {k: v for k, v in crm_state.items() if k in truth} == truth
    orphaned = set().union(*(_fields(r) for r in everything)) - set(truth)
    assert set(crm_state) - set(truth) <= orphaned
    for fake in (bed.sf, bed.hs, bed.http):
        assert fake.journal.resent_after_ack() == []
    # The faults did bite: answers lost after a write was applied, and 429s.
    lost = sum(1 for f in (bed.sf, bed.hs, bed.http) for e in f.journal.entries if not e.acknowledged)
    assert lost >= 5
    assert outstanding(bed.con) == []


def test_a_revoked_hubspot_token_fails_the_batch_and_stops():
    bed = Bed(routing=Routing(connections=settings(hubspot={"batch_size": 1})))
    bed.load(D1, [recording(f"r{n}", D1, crm=crm_block("ic_hs", opportunity=f"d{n}"), entityExtractions=[extraction("x", ("Deal", "note"))])
                  for n in range(3)])
    original = bed.hs.handle

    def revoke_after_properties(method, path, headers, body, base):
        if method == "POST":
            bed.hs.token = "revoked"
        return original(method, path, headers, body, base)

    bed.hs.handle = revoke_after_properties
    report = bed.run()
    assert report.stopped == ["hubspot: INVALID_AUTHENTICATION"] and (report.failed, report.delivered) == (1, 0)
    assert len([r for r in bed.hs.requests if r[0] == "POST"]) == 1      # the other batches were not tried
    assert bed.log("outcome, error_code, http_status") == [("failed", "INVALID_AUTHENTICATION", 401)]


def test_a_reject_is_retried_once_the_crm_schema_or_the_settings_change():
    objects = copy.deepcopy(SALESFORCE_OBJECTS)
    bed = Bed(salesforce={"objects": objects})
    bed.load(D1, [recording("r", D1, crm=crm_block("ic_sf", opportunity=OPP),
                            entityExtractions=[extraction("Negotiation", ("Opportunity", "StageName"))])])
    assert bed.run().rejected == 1
    assert bed.run().rejects_outstanding == 1            # same value, same schema: not re-tried
    stage = next(f for f in objects["Opportunity"] if f["name"] == "StageName")
    stage["picklistValues"].append({"value": "Negotiation", "active": True})   # an admin adds the option
    assert bed.run().delivered == 1
    assert bed.sf.records[("Opportunity", OPP)] == {"StageName": "Negotiation"}
    # A CRM-side reject waits for a settings change (here: another API version).
    bed.sf.validation_rules[("Opportunity", "Note__c")] = lambda v: "locked by a rule"
    bed.load(D1, [recording("r", D1, crm=crm_block("ic_sf", opportunity=OPP), entityExtractions=[
        extraction("Negotiation", ("Opportunity", "StageName")), extraction("n", ("Opportunity", "Note__c"), name="n")])])
    assert bed.run().rejected == 1 and bed.run().rejects_outstanding == 1
    bed.sf.validation_rules.clear()
    assert bed.run(routing=Routing(connections=settings(salesforce={"api_version": "61.0"}))).delivered == 1
