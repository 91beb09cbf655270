"""CRM writebacks end to end: plan rows in DuckDB -> ledger -> sinks -> fake CRMs.

Every test goes through the real sinks over the in-process fake CRM transport, on a
stepping clock (no wall-clock sleeps).
"""

from __future__ import annotations

from datetime import date

import pytest

from siro_assets.crm import Routing
from siro_assets.crm.config import OutboxSettings

from tests.crm_support import SF_ID, Bed, crm_block, extraction, recording, settings

D1, D2, D3 = date(2026, 1, 5), date(2026, 1, 6), date(2026, 1, 7)

ALL_SF = dict(opportunity=SF_ID["opportunity"], account=SF_ID["account"], lead=SF_ID["lead"],
              engagement=SF_ID["engagement"], contacts=[SF_ID["contact"]], users=[SF_ID["user"]])
MODELS = [("Opportunity", "opportunity"), ("Deal", "opportunity"), ("Account", "account"), ("Company", "account"),
          ("Lead", "lead"), ("Event", "engagement"), ("Meeting", "engagement"), ("Engagement", "engagement"),
          ("Appointment", "engagement"), ("Contact", "contact"), ("User", "user")]


def test_salesforce_every_object_mapping():
    bed = Bed()
    # One extraction per model name, each to its own field so none compete.
    fields = {"opportunity": "Note__c", "account": "Note__c", "lead": "Note__c", "engagement": "Note__c",
              "contact": "Note__c", "user": "Note__c"}
    bed.load(D1, [recording("r", D1, crm=crm_block("ic_sf", **ALL_SF), entityExtractions=[
        extraction(f"via {model}", (model, fields[obj])) for model, obj in MODELS])])
    report = bed.run([D1])
    assert report.delivered == 6 and report.rejected == report.failed == 0
    # Aliases of one object compete for one field: the last mapping in the recording wins.
    assert bed.sf.records == {
        ("Opportunity", SF_ID["opportunity"]): {"Note__c": "via Deal"},
        ("Account", SF_ID["account"]): {"Note__c": "via Company"},
        ("Lead", SF_ID["lead"]): {"Note__c": "via Lead"},
        ("Event", SF_ID["engagement"]): {"Note__c": "via Appointment"},
        ("Contact", SF_ID["contact"]): {"Note__c": "via Contact"},
        ("User", SF_ID["user"]): {"Note__c": "via User"},
    }
    # All six records went in one sObject Collections call.
    assert [r for r in bed.sf.requests if r[0] == "PATCH"] == [("PATCH", "/services/data/v62.0/composite/sobjects")]


def test_salesforce_object_types_are_configurable_per_connection():
    bed = Bed(routing=Routing(connections=settings(salesforce={"object_types": {"engagement": "Lead"}})))
    bed.load(D1, [recording("r", D1, crm=crm_block("ic_sf", engagement=SF_ID["lead"]),
                            entityExtractions=[extraction("n", ("Event", "Note__c"))])])
    bed.run()
    assert bed.sf.records == {("Lead", SF_ID["lead"]): {"Note__c": "n"}}


def test_hubspot_every_object_mapping_and_users_unsupported():
    bed = Bed()
    objects = dict(opportunity="d1", account="co1", lead="l1", engagement="m1", contacts=["c1", "c2"], users=["u1"])
    bed.load(D1, [recording("r", D1, crm=crm_block("ic_hs", **objects), entityExtractions=[
        extraction(f"via {model}", (model, "note")) for model, _ in MODELS])])
    report = bed.run()
    assert bed.hs.records == {
        ("deals", "d1"): {"note": "via Deal"}, ("companies", "co1"): {"note": "via Company"},
        ("leads", "l1"): {"note": "via Lead"}, ("meetings", "m1"): {"note": "via Appointment"},
        ("contacts", "c1"): {"note": "via Contact"}, ("contacts", "c2"): {"note": "via Contact"},
    }
    assert report.delivered == 6 and report.rejected == 1
    assert bed.log(where="outcome = 'rejected'") == [("u1", "note", "rejected", "unsupported_object")]


def test_http_sink_paths_headers_and_body():
    bed = Bed()
    odd = "a/b #1 é?"
    bed.load(D1, [recording("r", D1, crm=crm_block("ic_http", opportunity=odd, contacts=["c 1", "c/2"]),
                            entityExtractions=[extraction(["x", None, 2], ("Deal", "Tags")),
                                               extraction(3.5, ("Contact", "Score"), name="s")])])
    assert bed.run().delivered == 3
    requests = sorted(bed.http.requests, key=lambda r: r["path"])
    assert [r["path"] for r in requests] == [
        "/Contact/c%201", "/Contact/c%2F2", "/Deal/a%2Fb%20%231%20%C3%A9%3F"]
    assert [r["target"] for r in requests] == [("Contact", "c 1"), ("Contact", "c/2"), ("Deal", odd)]
    assert bed.http.records[("Deal", odd)] == {"Tags": ["x", None, 2]}
    assert all(len(r["key"]) == 64 for r in requests)
    assert len({r["key"] for r in requests}) == 3


def test_value_formatting_per_crm():
    values = [
        ("Count__c", "count", "42", 42, "42"),                       # numeric text -> number
        ("Score__c", "count", 1234.75, 1234.75, "1234.75"),
        ("Flag__c", "flag", "TRUE", True, "true"),                   # boolean text -> boolean
        ("Financing__c", "financing", False, False, "false"),
        ("Day__c", "day", "2026-03-04T23:30:00-02:00", "2026-03-05", "2026-03-05"),  # to the UTC date
        ("Tags__c", "tags", ["red", None, 1, True, 2.5, "two"], "red;1;true;2.5;two", "red;1;true;2.5;two"),
        ("Note__c", "note", ["a", None, 7], "a;7", "a;7"),          # array to text: ;-joined
        ("Note__c", "name", 10.0, "10", "10"),                      # number to text: decimal text
    ]
    bed = Bed()
    sf_ext = [extraction(v, ("Opportunity", sf), name=f"e{i}") for i, (sf, _, v, _, _) in enumerate(values)]
    hs_ext = [extraction(v, ("Deal", hs), name=f"e{i}") for i, (_, hs, v, _, _) in enumerate(values)]
    bed.load(D1, [
        recording("sf", D1, crm=crm_block("ic_sf", opportunity=SF_ID["opportunity"]), entityExtractions=sf_ext[:-1]),
        recording("sf2", D1, crm=crm_block("ic_sf", account=SF_ID["account"]),
                  entityExtractions=[extraction(10.0, ("Account", "Note__c"))]),
        recording("hs", D1, crm=crm_block("ic_hs", opportunity="d1"), entityExtractions=hs_ext),
    ])
    report = bed.run()
    assert report.rejected == report.failed == 0, bed.log()
    sf = bed.sf.records[("Opportunity", SF_ID["opportunity"])]
    # The last two SF rows both map Note__c on the opportunity; only the array one is in sf_ext[:-1].
    assert sf == {sf_field: sf_value for sf_field, _, _, sf_value, _ in values[:-1]}
    assert bed.sf.records[("Account", SF_ID["account"])] == {"Note__c": "10"}
    assert bed.hs.records[("deals", "d1")] == {hs_field: hs_value for _, hs_field, _, _, hs_value in values}
    assert all(isinstance(v, str) for v in bed.hs.records[("deals", "d1")].values())


def test_picklists_match_case_and_labels_before_sending():
    bed = Bed()
    bed.load(D1, [
        recording("sf", D1, crm=crm_block("ic_sf", opportunity=SF_ID["opportunity"]),
                  entityExtractions=[extraction("closed won", ("Opportunity", "stagename"))]),
        recording("hs", D1, crm=crm_block("ic_hs", opportunity="d1"),
                  entityExtractions=[extraction("Closedwon", ("Deal", "dealstage"))]),  # the label
    ])
    bed.run()
    assert bed.sf.records[("Opportunity", SF_ID["opportunity"])] == {"StageName": "Closed Won"}
    assert bed.hs.records[("deals", "d1")] == {"dealstage": "closedwon"}


def test_contacts_and_users_fan_out_one_write_each():
    bed = Bed()
    contacts = [f"003000000000{n:03d}AAA" for n in range(1, 4)]
    users = ["005000000000001AAA", "005000000000002AAA"]
    bed.load(D1, [recording("r", D1, crm=crm_block("ic_sf", contacts=contacts, users=users),
                            entityExtractions=[extraction("hi", ("Contact", "Note__c"), ("User", "Note__c"))])])
    assert bed.run().delivered == 5
    assert sorted(bed.sf.records) == sorted([("Contact", c) for c in contacts] + [("User", u) for u in users])


def _stage(value):
    return [extraction(value, ("Opportunity", "Stage__c"))]


SF_OPP = crm_block("ic_sf", opportunity=SF_ID["opportunity"])
OPP = ("Opportunity", SF_ID["opportunity"])


def test_newest_recording_wins_across_days_and_an_old_day_never_goes_backwards():
    bed = Bed()
    bed.load(D2, [recording("new", D2, hour=1, crm=SF_OPP, entityExtractions=_stage("New"))])
    bed.load(D1, [recording("old", D1, hour=23, crm=SF_OPP, entityExtractions=_stage("Old"))])
    bed.run([D1])   # the older day's run delivers the newer day's value
    assert bed.sf.records[OPP] == {"Stage__c": "New"}
    bed.load(D1, [recording("old", D1, hour=23, crm=SF_OPP, entityExtractions=_stage("Old again"))])
    report = bed.run([D1])   # rematerializing the old day
    assert report.delivered == 0 and report.unchanged == 1
    assert bed.sf.records[OPP] == {"Stage__c": "New"}
    assert [e.value for e in bed.sf.journal.entries] == ["New"]


@pytest.mark.parametrize("connection", ["ic_sf", "ic_hs", "ic_http", "ic_outbox"])
def test_a_b_a_sends_the_second_a(connection):
    bed = Bed()
    crm = crm_block(connection, opportunity=SF_ID["opportunity"])
    field = "Stage__c" if connection == "ic_sf" else "note"
    days = [(D1, "r1", "A"), (D2, "r2", "B"), (D3, "r3", "A")]
    for day, rid, value in days:
        bed.load(day, [recording(rid, day, crm=crm, entityExtractions=[extraction(value, ("Opportunity", field))])])
        assert bed.run([day]).delivered == 1
    assert bed.log("recording_id, outcome", "outcome = 'delivered'") == [("r1", "delivered"), ("r2", "delivered"), ("r3", "delivered")]
    assert [d for (d,) in bed.log("partition_date", "outcome = 'delivered'")] == [D1, D2, D3]
    keys = [k for (k,) in bed.log("delivery_key", "outcome = 'delivered'")]
    assert len(set(keys)) == 3
    sent = {
        "ic_sf": lambda: [e.value for e in bed.sf.journal.entries],
        "ic_hs": lambda: [e.value for e in bed.hs.journal.entries],
        "ic_http": lambda: [e.value for e in bed.http.journal.entries],
        "ic_outbox": lambda: [v for _, _, v in bed.outbox()],
    }[connection]()
    assert sent == ["A", "B", "A"]
    if connection == "ic_http":
        assert len({r["key"] for r in bed.http.requests}) == 3
    assert bed.state("json(acked_value)::VARCHAR, acked_recording_id, deliveries") == [('"A"', "r3", 3)]


def test_a_deleted_newer_recording_gives_the_field_back_to_the_next_newest():
    bed = Bed()
    bed.load(D1, [recording("r1", D1, crm=SF_OPP, entityExtractions=_stage("One"))])
    bed.load(D2, [recording("r2", D2, crm=SF_OPP, entityExtractions=_stage("Two"))])
    bed.run([D1, D2])
    assert bed.sf.records[OPP] == {"Stage__c": "Two"}
    bed.load(D2, [recording("r2", D2, crm=SF_OPP, entityExtractions=_stage("Two"), deleted=True,
                            deletedAt="2026-01-08T00:00:00.000Z")])
    assert bed.run([D2]).delivered == 1
    assert bed.sf.records[OPP] == {"Stage__c": "One"}
    assert bed.state("acked_recording_id") == [("r1",)]


def test_nulls_are_never_sent_unless_the_connection_opts_in():
    HS_DEAL = crm_block("ic_hs", opportunity="d1")

    def load(bed):
        bed.load(D1, [recording("old", D1, hour=8, crm=SF_OPP, entityExtractions=_stage("Kept")),
                      recording("hs_old", D1, hour=8, crm=HS_DEAL, entityExtractions=[
                          extraction("kept", ("Deal", "note")), extraction("kept too", ("Deal", "name"), name="y")])])
        assert bed.run().delivered == 3
        bed.load(D1, [recording("old", D1, hour=8, crm=SF_OPP, entityExtractions=_stage("Kept")),
                      recording("hs_old", D1, hour=8, crm=HS_DEAL, entityExtractions=[
                          extraction("kept", ("Deal", "note")), extraction("kept too", ("Deal", "name"), name="y")]),
                      recording("new", D1, hour=9, crm=SF_OPP, entityExtractions=_stage(None)),
                      recording("newer", D1, hour=10, crm=HS_DEAL, entityExtractions=[
                          extraction([None, None], ("Deal", "note")), extraction(None, ("Deal", "name"), name="y")])])

    bed = Bed()
    load(bed)
    report = bed.run()
    # Without the opt-in a null is "nothing extracted": the older values stay the targets.
    assert report.delivered == 0 and report.unchanged == 3
    assert bed.sf.records[OPP] == {"Stage__c": "Kept"}
    assert bed.hs.records[("deals", "d1")] == {"note": "kept", "name": "kept too"}

    opted = Bed(routing=Routing(connections=settings(salesforce={"write_nulls": True}, hubspot={"write_nulls": True})))
    load(opted)
    assert opted.run().delivered == 2
    # Opted in, a JSON null clears: Salesforce gets null, HubSpot its documented "" clear.
    assert opted.sf.records[OPP] == {"Stage__c": None}
    assert [e.value for e in opted.sf.journal.entries][-1] is None
    # An array of nulls is blank, not a null: it clears nothing even here.
    assert opted.hs.records[("deals", "d1")] == {"note": "kept", "name": ""}
    assert opted.state("external_id, field_key, json(acked_value)::VARCHAR") == [
        ("006000000000001AAA", "stage__c", "null"), ("d1", "name", "null"), ("d1", "note", '"kept"')]
    # A delivered clear is acknowledged like any value: not sent again.
    assert opted.run().delivered == 0


BLANKS = ["", "   ", "\t\n", [], [""], [None, None], ["", " ", None], None]


@pytest.mark.parametrize("write_nulls", [False, True])
@pytest.mark.parametrize("connection", ["ic_sf", "ic_hs", "ic_http", "ic_outbox"])
def test_a_blank_never_clears_a_field_and_never_blocks_an_older_real_value(connection, write_nulls):
    """The newest recordings extract blanks for two fields: one already holds a value in
    the CRM, one has only an older recording's real value, never sent. The CRM keeps the
    first and gets the second; no blank is ever on the wire."""
    sink = {"ic_sf": "salesforce", "ic_hs": "hubspot", "ic_http": "http", "ic_outbox": "outbox"}[connection]
    bed = Bed(routing=Routing(connections=settings(**{sink: {"write_nulls": write_nulls}})))
    crm = crm_block(connection, opportunity=SF_ID["opportunity"])
    kept, late = ("Note__c", "Description") if connection == "ic_sf" else ("note", "description")
    blanks = [v for v in BLANKS if v is not None or not write_nulls]
    bed.load(D1, [recording("real", D1, hour=8, crm=crm, entityExtractions=[extraction("Call back Tuesday", ("Opportunity", kept))])])
    assert bed.run([D1]).delivered == 1
    bed.load(D1, [
        recording("real", D1, hour=8, crm=crm, entityExtractions=[extraction("Call back Tuesday", ("Opportunity", kept))]),
        recording("older", D1, hour=7, crm=crm, entityExtractions=[extraction("Roof is 20 years old", ("Opportunity", late))]),
    ])
    bed.load(D2, [
        recording(f"blank{i}", D2, hour=i, crm=crm, entityExtractions=[
            extraction(v, ("Opportunity", kept)), extraction(v, ("Opportunity", late), name="y")])
        for i, v in enumerate(blanks)])
    report = bed.run([D1, D2])
    assert (report.delivered, report.rejected, report.failed) == (1, 0, 0), bed.log()
    sent = {
        "ic_sf": lambda: [(e.field, e.value) for e in bed.sf.journal.entries],
        "ic_hs": lambda: [(e.field, e.value) for e in bed.hs.journal.entries],
        "ic_http": lambda: [(e.field, e.value) for e in bed.http.journal.entries],
        "ic_outbox": lambda: [(f, v) for _, f, v in bed.outbox()],
    }[connection]()
    assert sorted(sent) == sorted([(kept, "Call back Tuesday"), (late, "Roof is 20 years old")])
    assert bed.state("field_key, json(acked_value)::VARCHAR, acked_recording_id") == [
        (late.lower(), '"Roof is 20 years old"', "older"), (kept.lower(), '"Call back Tuesday"', "real")]
    assert bed.run().delivered == 0
    plan = bed.con.execute("SELECT DISTINCT plan_status FROM siro.crm_writeback_plan WHERE recording_id LIKE 'blank%'")
    assert {s for (s,) in plan.fetchall()} == ({"blank"} if write_nulls else {"blank", "clear"})


def test_a_number_bound_for_a_text_field_is_its_json_text():
    bed = Bed()
    bed.load(D1, [
        recording("sf", D1, crm=SF_OPP, entityExtractions=[
            extraction(1e21, ("Opportunity", "Note__c")), extraction(1e21, ("Opportunity", "Amount"), name="n")]),
        recording("hs", D1, crm=crm_block("ic_hs", opportunity="d1"), entityExtractions=[
            extraction(1e21, ("Deal", "note")), extraction(1e21, ("Deal", "amount"), name="n")]),
    ])
    assert bed.run().delivered == 4, bed.log()
    assert bed.sf.records[OPP] == {"Note__c": "1e+21", "Amount": 1e21}
    # HubSpot number properties take plain decimal text only.
    assert bed.hs.records[("deals", "d1")] == {"note": "1e+21", "amount": "1000000000000000000000"}


def test_http_ids_that_would_change_the_url_are_rejects_and_the_rest_reach_their_record():
    from siro_assets.crm.sinks import HttpSink
    from siro_assets.crm.writes import FieldWrite

    bed = Bed()
    sink = HttpSink(bed.routing.for_connection("ic_http"), transport=bed.transport, sleep=bed.clock.sleep,
                    clock=bed.clock.monotonic)
    ids = ["", ".", "..", "a/../b", "%2e%2e", "...", " "]
    writes = [FieldWrite("ic_http", "opportunity", i, "stage", "Stage", "Deal", f"v{n}", "r", f"k{n}")
              for n, i in enumerate(ids)]
    prepared, rejects = sink.prepare(writes)
    # httpx drops dot segments: "." and ".." would PATCH /Deal or the root, "" the collection.
    assert [(o.write.external_id, o.status, o.error_code) for o in rejects] == [
        ("", "rejected", "invalid_external_id"), (".", "rejected", "invalid_external_id"),
        ("..", "rejected", "invalid_external_id")]
    assert all("URL path" in o.error_message for o in rejects)
    outcomes = [o for batch in sink.batches(prepared) for o in sink.send(batch)]
    assert [o.status for o in outcomes] == ["delivered"] * 4
    # Escaped, the others name exactly their own record.
    assert sorted(r["target"] for r in bed.http.requests) == sorted(("Deal", i) for i in ids[3:])
    assert {r["path"] for r in bed.http.requests} == {"/Deal/a%2F..%2Fb", "/Deal/%252e%252e", "/Deal/...", "/Deal/%20"}


def test_an_http_id_of_dots_is_a_reject_through_the_delivery():
    bed = Bed()
    bed.load(D1, [recording("r", D1, crm=crm_block("ic_http", opportunity=".."),
                            entityExtractions=[extraction("Won", ("Deal", "Stage"))])])
    report = bed.run()
    assert (report.delivered, report.rejected) == (0, 1)
    assert bed.http.requests == []
    assert bed.log() == [("..", "Stage", "rejected", "invalid_external_id")]


def test_dry_run_sends_nothing_and_logs_what_would_be_sent():
    bed = Bed()
    bed.load(D1, [recording("r", D1, crm=crm_block("ic_sf", opportunity=SF_ID["opportunity"]), entityExtractions=[
        extraction("x", ("Opportunity", "Stage__c")), extraction("y", ("Opportunity", "Nope__c"), name="bad")]),
        recording("h", D1, crm=crm_block("ic_http", opportunity="o"), entityExtractions=_stage("z")),
        recording("o", D1, crm=crm_block("ic_other", opportunity="o"), entityExtractions=_stage("w"))])
    report = bed.run(dry_run=True)
    assert (report.dry_run, report.rejected, report.delivered) == (3, 1, 0)
    assert [r for r in bed.sf.requests if r[0] != "GET" and "oauth2" not in r[1]] == []
    assert bed.sf.records == {} and bed.http.requests == [] and bed.outbox() == []
    assert bed.log("external_id, crm_field_name, outcome") == [
        ("006000000000001AAA", "Nope__c", "rejected"), ("006000000000001AAA", "Stage__c", "dry_run"),
        ("o", "Stage__c", "dry_run"), ("o", "Stage__c", "dry_run")]
    assert bed.state() == []
    # The real run afterwards sends everything.
    assert bed.run().delivered == 3


def test_outbox_is_the_default_and_a_resent_delivery_is_queued_once():
    bed = Bed(routing=Routing(connections={"*": OutboxSettings()}))
    bed.load(D1, [recording("r", D1, crm=crm_block("ic_any", opportunity="o1"), entityExtractions=_stage(["a", 1]))])
    assert bed.run().delivered == 1
    assert bed.outbox() == [("o1", "Stage__c", ["a", 1])]
    # Crash-like replay: the intent survives, the same delivery is queued again -> one row.
    bed.con.execute("UPDATE siro.crm_writeback_state SET pending_value = acked_value, acked_value = NULL, deliveries = 0")
    assert bed.run().delivered == 1
    assert bed.outbox() == [("o1", "Stage__c", ["a", 1])]


def test_delivery_holds_no_warehouse_connection_while_calling_a_crm():
    bed = Bed()
    open_now = []
    inner = bed.connect

    import contextlib

    @contextlib.contextmanager
    def tracked():
        with inner() as con:
            open_now.append(True)
            try:
                yield con
            finally:
                open_now.pop()

    bed.connect = tracked
    seen = []
    handle = bed.transport.handle_request
    bed.transport.handle_request = lambda request: seen.append(bool(open_now)) or handle(request)
    bed.load(D1, [recording("r", D1, crm=SF_OPP, entityExtractions=_stage("v"))])
    assert bed.run().delivered == 1
    assert seen and not any(seen)


def test_the_null_opt_in_follows_the_routing_entry_then_the_default():
    # "*" opts in; ic_sf has its own entry that does not: only the outbox connection clears.
    bed = Bed(routing=Routing(connections=settings(outbox={"write_nulls": True})))
    for connection in ("ic_sf", "ic_any"):
        crm = crm_block(connection, opportunity=SF_ID["opportunity"])
        bed.load(D1, [recording("old", D1, hour=8, crm=crm, entityExtractions=_stage("Kept"))])
        bed.run()
        bed.load(D1, [recording("old", D1, hour=8, crm=crm, entityExtractions=_stage("Kept")),
                      recording("new", D1, hour=9, crm=crm, entityExtractions=_stage(None))])
        bed.run()
    assert bed.sf.records[OPP] == {"Stage__c": "Kept"}
    assert bed.outbox() == [(SF_ID["opportunity"], "Stage__c", "Kept"), (SF_ID["opportunity"], "Stage__c", None)]
