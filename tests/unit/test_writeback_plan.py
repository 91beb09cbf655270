"""`siro.crm_writeback_plan` and LATEST_WRITES_SQL: hand-written API payloads in, exact rows out.

Payloads go through the real staging path into an in-memory DuckDB, then
`rebuild_partitions` builds the plan. Positions are 0-based.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date

from siro_assets.transforms import (
    CRM_WRITEBACK_PLAN,
    DERIVED_TABLES,
    LATEST_WRITES_SQL,
    RECORDING_ENTITY_EXTRACTIONS,
    rebuild_partitions,
)
from siro_assets.crm.values import is_blank
from siro_assets.transforms.sql_fragments import IS_BLANK
from siro_assets.transforms.writeback_plan import PLAN_STATUSES, latest_writes_sql

from tests.raw_payloads import load_raw, recording, ref

D1 = date(2026, 1, 5)
D2 = date(2026, 1, 6)

# The columns that say where a value goes and whether it can go there.
WHERE_TO = (
    "recording_id, extraction_position, mapping_position, crm_model_name, crm_field_name, "
    "object_type, object_position, integration_connection_id, external_id, siro_id, plan_status"
)


def plan(con, columns=WHERE_TO, where="TRUE"):
    return con.execute(
        f"SELECT {columns} FROM siro.crm_writeback_plan WHERE {where} ORDER BY ALL"
    ).fetchall()


def build(con, records, partitions=(D1,)):
    load_raw(con, records, list(partitions))
    return rebuild_partitions(con, CRM_WRITEBACK_PLAN, list(partitions))


def m(model, field="F__c"):
    return {"crmModelName": model, "crmFieldName": field}


FULL_CRM = {
    "integrationConnectionId": "ic",
    "users": [ref("su1", "U1"), ref("su2", "U2")],
    "engagement": ref("se", "E"),
    "opportunity": ref("so", "O"),
    "contacts": [ref("sc1", "C1"), ref("sc2", "C2"), ref("sc3", "C3")],
    "account": ref("sa", "A"),
    "lead": ref("sl", "L"),
}

EVERY_MODEL = [
    m("Opportunity"), m("account"), m("LEAD"), m("Engagement"), m("Appointment"),
    m("event"), m("Contact"), m("User"), m("Widget"),
    # HubSpot-style names.
    m("Deal"), m("Company"), m("meeting"),
]


def _key(*parts) -> str:
    """The documented canonical form, rebuilt in Python for plain ASCII values."""
    return hashlib.sha256(json.dumps(list(parts), separators=(",", ":")).encode()).hexdigest()


def _sorted(rows):
    return sorted(rows, key=lambda r: tuple((v is None, "" if v is None else v) for v in r))


def test_every_model_resolves_to_its_crm_object(con):
    extraction = {"name": "x", "value": "v", "mappings": EVERY_MODEL}
    assert build(con, [recording("r", D1, crm=FULL_CRM, entityExtractions=[extraction])]) == 15
    assert _sorted(plan(con)) == _sorted([
        ("r", 0, 0, "Opportunity", "F__c", "opportunity", 0, "ic", "O", "so", "ready"),
        ("r", 0, 1, "account", "F__c", "account", 0, "ic", "A", "sa", "ready"),
        ("r", 0, 2, "LEAD", "F__c", "lead", 0, "ic", "L", "sl", "ready"),
        ("r", 0, 3, "Engagement", "F__c", "engagement", 0, "ic", "E", "se", "ready"),
        ("r", 0, 4, "Appointment", "F__c", "engagement", 0, "ic", "E", "se", "ready"),
        ("r", 0, 5, "event", "F__c", "engagement", 0, "ic", "E", "se", "ready"),
        ("r", 0, 6, "Contact", "F__c", "contact", 0, "ic", "C1", "sc1", "ready"),
        ("r", 0, 6, "Contact", "F__c", "contact", 1, "ic", "C2", "sc2", "ready"),
        ("r", 0, 6, "Contact", "F__c", "contact", 2, "ic", "C3", "sc3", "ready"),
        ("r", 0, 7, "User", "F__c", "user", 0, "ic", "U1", "su1", "ready"),
        ("r", 0, 7, "User", "F__c", "user", 1, "ic", "U2", "su2", "ready"),
        ("r", 0, 8, "Widget", "F__c", None, None, "ic", None, None, "unknown_model"),
        ("r", 0, 9, "Deal", "F__c", "opportunity", 0, "ic", "O", "so", "ready"),
        ("r", 0, 10, "Company", "F__c", "account", 0, "ic", "A", "sa", "ready"),
        ("r", 0, 11, "meeting", "F__c", "engagement", 0, "ic", "E", "se", "ready"),
    ])
    created = con.execute("SELECT DISTINCT recording_created_at::VARCHAR FROM siro.crm_writeback_plan").fetchall()
    assert [c[0][:19] for c in created] == ["2026-01-05 10:00:00"]


def test_unlinked_recording_keeps_its_rows_with_no_ids(con):
    extractions = [{"name": "x", "value": 7, "mappings": [m("Opportunity"), m("Contact"), m("Widget")]}]
    build(con, [
        recording("null_crm", D1, crm=None, entityExtractions=extractions),
        recording("no_crm_key", D1, drop=["crm"], entityExtractions=extractions),
    ])
    for rid in ("null_crm", "no_crm_key"):
        assert plan(con, where=f"recording_id = '{rid}'") == [
            (rid, 0, 0, "Opportunity", "F__c", "opportunity", None, None, None, None, "unlinked"),
            (rid, 0, 1, "Contact", "F__c", "contact", None, None, None, None, "unlinked"),
            # An unknown model stays unknown whether linked or not: linking won't fix it.
            (rid, 0, 2, "Widget", "F__c", None, None, None, None, None, "unknown_model"),
        ]
    assert plan(con, "DISTINCT idempotency_key") == [(None,)]


def test_no_target_when_the_crm_block_lacks_the_object(con):
    crm = {
        "integrationConnectionId": "ic",
        "engagement": ref("se", "E"),
        "account": {},                                  # not a link
        "contacts": [],
        "users": None,
        "opportunity": {"id": "so", "externalId": None},  # Siro knows it, the CRM id is missing
        "lead": ref("sl", ""),                          # blank CRM id
    }
    mappings = [m("Lead"), m("Contact"), m("User"), m("Account"), m("Opportunity"), m("Engagement")]
    build(con, [recording("r", D1, crm=crm, entityExtractions=[{"name": "x", "value": "v", "mappings": mappings}])])
    assert plan(con) == [
        ("r", 0, 0, "Lead", "F__c", "lead", 0, "ic", None, "sl", "no_target"),
        ("r", 0, 1, "Contact", "F__c", "contact", None, "ic", None, None, "no_target"),
        ("r", 0, 2, "User", "F__c", "user", None, "ic", None, None, "no_target"),
        ("r", 0, 3, "Account", "F__c", "account", None, "ic", None, None, "no_target"),
        ("r", 0, 4, "Opportunity", "F__c", "opportunity", 0, "ic", None, "so", "no_target"),
        ("r", 0, 5, "Engagement", "F__c", "engagement", 0, "ic", "E", "se", "ready"),
    ]


def test_contacts_and_users_one_row_each_skipping_empty_refs(con):
    crm = {
        "integrationConnectionId": "ic",
        "contacts": [ref("sc1", "C1"), {}, None, ref("sc4", "C4"), {"id": "sc5"}],
        "users": [{"externalId": "U1"}],
    }
    build(con, [recording("r", D1, crm=crm,
                          entityExtractions=[{"name": "x", "value": "v", "mappings": [m("contact"), m("USER")]}])])
    # Positions stay the API array index, like recording_crm_links.position.
    assert plan(con, "mapping_position, object_position, external_id, siro_id, plan_status") == [
        (0, 0, "C1", "sc1", "ready"),
        (0, 3, "C4", "sc4", "ready"),
        (0, 4, None, "sc5", "no_target"),
        (1, 0, "U1", None, "ready"),
    ]


def test_mappings_null_empty_absent_or_malformed(con):
    extractions = [
        {"name": "null_mappings", "value": "a", "mappings": None},
        {"name": "empty_mappings", "value": "b", "mappings": []},
        {"name": "absent_mappings", "value": "c"},
        {"name": "null_element", "value": "d", "mappings": [None, m("Account")]},
        {"name": "no_field", "value": "e", "mappings": [{"crmModelName": "Account"}, m("Account", "  ")]},
        {"name": "no_model", "value": "f", "mappings": [{"crmFieldName": "F__c"}, m("", "F__c")]},
    ]
    build(con, [
        recording("r", D1, crm=FULL_CRM, entityExtractions=extractions),
        recording("none", D1, crm=FULL_CRM, entityExtractions=[]),
        recording("absent", D1, crm=FULL_CRM, drop=["entityExtractions"]),
        recording("unlinked_nofield", D1, entityExtractions=[extractions[4]]),
    ])
    assert plan(con, "recording_id, extraction_name, mapping_position, crm_model_name, crm_field_name, plan_status") == [
        ("r", "no_field", 0, "Account", None, "no_field"),
        ("r", "no_field", 1, "Account", "  ", "no_field"),
        ("r", "no_model", 0, None, "F__c", "unknown_model"),
        ("r", "no_model", 1, "", "F__c", "unknown_model"),
        ("r", "null_element", 1, "Account", "F__c", "ready"),
        ("unlinked_nofield", "no_field", 0, "Account", None, "no_field"),
        ("unlinked_nofield", "no_field", 1, "Account", "  ", "no_field"),
    ]


UNICODE = "Grüße, naïve café — 日本語 😀 \u200b\n\tend"
VALUES = [
    ("string", "Metal"),
    ("int", 42),
    ("float", 1234.75),
    ("negative", -3),
    ("true", True),
    ("false", False),
    ("null", None),
    ("array", ["red", "grün"]),
    ("mixed", [1, "two", None, True, 2.5]),
    ("blank", ""),
    ("unicode", UNICODE),
    ("empty_list", []),
]


def test_every_value_shape_matches_the_extractions_table(con):
    extractions = [{"name": n, "value": v, "mappings": [m("Opportunity")]} for n, v in VALUES]
    extractions.append({"name": "absent", "mappings": [m("Opportunity")]})
    load_raw(con, [recording("r", D1, crm=FULL_CRM, entityExtractions=extractions)], [D1])
    rebuild_partitions(con, RECORDING_ENTITY_EXTRACTIONS, [D1])
    assert rebuild_partitions(con, CRM_WRITEBACK_PLAN, [D1]) == len(VALUES) + 1
    got = con.execute(
        """
        SELECT p.extraction_name, p.value, p.value_text, p.value_type, p.idempotency_key,
               e.value = p.value AND e.value_text IS NOT DISTINCT FROM p.value_text
                   AND e.value_type = p.value_type
        FROM siro.crm_writeback_plan p
        JOIN siro.recording_entity_extractions e
          ON e.recording_id = p.recording_id AND e.position = p.extraction_position
         AND e.mapping_position = p.mapping_position
        ORDER BY p.extraction_position
        """
    ).fetchall()
    assert [g[0] for g in got] == [n for n, _ in VALUES] + ["absent"]
    assert all(g[5] for g in got)
    assert [json.loads(g[1]) for g in got] == [v for _, v in VALUES] + [None]
    types = {g[0]: g[3] for g in got}
    assert types == {
        "string": "string", "int": "number", "float": "number", "negative": "number",
        "true": "boolean", "false": "boolean", "null": "null", "array": "array", "mixed": "array",
        "blank": "string", "unicode": "string", "empty_list": "array", "absent": "null",
    }
    texts = {g[0]: g[2] for g in got}
    assert texts["mixed"] == "1, two, true, 2.5" and texts["unicode"] == UNICODE and texts["null"] is None
    keys = [g[4] for g in got]
    # null and absent are the same write (JSON null); blanks are never sent, so have no
    # key; every other value has its own key.
    assert keys[VALUES.index(("null", None))] == keys[-1]
    blanks = [VALUES.index(("blank", "")), VALUES.index(("empty_list", []))]
    assert [keys[i] for i in blanks] == [None, None]
    keys = [k for i, k in enumerate(keys) if i not in blanks]
    assert len(set(keys)) == len(VALUES) - len(blanks)
    assert all(len(k) == 64 and int(k, 16) >= 0 for k in keys)


def test_idempotency_key_is_the_documented_hash(con):
    build(con, [recording("r", D1, crm=FULL_CRM, entityExtractions=[
        {"name": "s", "value": "Metal", "mappings": [m("Opportunity", "Roof__c")]},
        {"name": "n", "value": [1, "a", None], "mappings": [m("Account", "Tags__c")]},
    ])])
    assert plan(con, "idempotency_key") == sorted([
        (_key("ic", "opportunity", "O", "roof__c", "Metal", "r"),),
        (_key("ic", "account", "A", "tags__c", [1, "a", None], "r"),),
    ])


def test_model_aliases_and_field_case_are_one_crm_field(con):
    """Event.Notes (older recording) and Appointment.notes (newer) both write the same
    engagement field, and the newer recording wins it; within one recording the same
    value has one key whatever the alias or case."""
    build(con, [
        recording("old", D1, hour=8, crm=FULL_CRM, entityExtractions=[
            {"name": "n", "value": "old note", "mappings": [m("Event", "Notes")]}]),
        recording("new", D1, hour=9, crm=FULL_CRM, entityExtractions=[
            {"name": "n", "value": "new note", "mappings": [m("Appointment", "notes")]},
            {"name": "again", "value": "old note", "mappings": [m("engagement", " NOTES ")]},
            {"name": "same", "value": "new note", "mappings": [m("EVENT", "Notes")]}]),
    ])
    keys = dict(con.execute(
        "SELECT extraction_name || '@' || recording_id, idempotency_key FROM siro.crm_writeback_plan"
    ).fetchall())
    assert keys["n@new"] == keys["same@new"]
    assert len({keys["n@old"], keys["again@new"], keys["n@new"]}) == 3
    latest = con.execute(f"SELECT recording_id, value FROM ({LATEST_WRITES_SQL})").fetchall()
    assert len(latest) == 1 and latest[0][0] == "new"


def test_idempotency_key_stable_across_rebuilds_and_distinct_per_recording(con):
    ext = [{"name": "roof", "value": "Metal", "mappings": [m("Opportunity", "Roof__c"), m("Contact", "Roof__c")]}]
    records = [
        recording("r1", D1, crm=FULL_CRM, entityExtractions=ext),
        recording("r2", D2, crm=FULL_CRM, entityExtractions=ext),
    ]
    load_raw(con, records[:1], [D1])
    load_raw(con, records[1:], [D2])
    rebuild_partitions(con, CRM_WRITEBACK_PLAN, [D1, D2])
    keys = "recording_id, object_type, external_id, idempotency_key"
    first = plan(con, keys)
    # Rebuilding, and re-ingesting the same payload, gives the same keys.
    rebuild_partitions(con, CRM_WRITEBACK_PLAN, [D1, D2])
    load_raw(con, records[:1], [D1])
    rebuild_partitions(con, CRM_WRITEBACK_PLAN, [D1])
    assert plan(con, keys) == first
    by = {(r, o, e): k for r, o, e, k in first}
    # The same value from another recording is another recording's write (A -> B -> A
    # must not collide); another record is another write too.
    assert by[("r1", "opportunity", "O")] != by[("r2", "opportunity", "O")]
    assert len({by[("r1", "contact", c)] for c in ("C1", "C2", "C3")} | {by[("r1", "opportunity", "O")]}) == 4

    # A changed value, field or connection is a different write.
    for change in (
        {"entityExtractions": [{**ext[0], "value": "Tile"}]},
        {"entityExtractions": [{**ext[0], "value": ["Metal"]}]},
        {"entityExtractions": [{**ext[0], "mappings": [m("Opportunity", "Roof2__c")]}]},
        {"crm": {**FULL_CRM, "integrationConnectionId": "ic2"}},
    ):
        load_raw(con, [recording("r1", D1, **{"crm": FULL_CRM, "entityExtractions": ext, **change})], [D1])
        rebuild_partitions(con, CRM_WRITEBACK_PLAN, [D1])
        new = plan(con, "idempotency_key", "recording_id = 'r1' AND object_type = 'opportunity'")
        assert new[0][0] != by[("r1", "opportunity", "O")], change


def test_late_link_turns_rows_ready_on_rebuild(con):
    ext = [{"name": "roof", "value": "Metal", "mappings": [m("Opportunity", "Roof__c")]}]
    build(con, [recording("r", D1, crm=None, entityExtractions=ext)])
    assert plan(con, "plan_status, external_id, idempotency_key IS NULL") == [("unlinked", None, True)]
    build(con, [recording("r", D1, crm=FULL_CRM, entityExtractions=ext, updatedAt="2026-01-07T09:00:00.000Z")])
    assert plan(con, "plan_status, external_id, idempotency_key IS NULL") == [("ready", "O", False)]


def test_deleted_and_purged_recordings_have_no_rows(con):
    ext = [{"name": "roof", "value": "Metal", "mappings": [m("Opportunity")]}]
    build(con, [
        recording("live", D1, crm=FULL_CRM, entityExtractions=ext),
        recording("gone", D1, crm=FULL_CRM, entityExtractions=ext, deleted=True, deletedAt="2026-01-05T12:00:00.000Z"),
        recording("purged", D1, crm=FULL_CRM, entityExtractions=ext, rootDataPurgedAt="2026-01-05T13:00:00.000Z"),
    ])
    assert plan(con, "recording_id") == [("live",)]


def test_statuses_and_unique_row_key(con):
    build(con, [
        recording("a", D1, crm=FULL_CRM, entityExtractions=[{"name": "x", "value": 1, "mappings": EVERY_MODEL}]),
        recording("b", D1, entityExtractions=[{"name": "x", "value": 1, "mappings": EVERY_MODEL}]),
    ])
    assert {s for (s,) in plan(con, "DISTINCT plan_status")} <= set(PLAN_STATUSES)
    dupes = con.execute(
        """
        SELECT count(*) FROM (
            SELECT recording_id, extraction_position, mapping_position, object_position
            FROM siro.crm_writeback_plan GROUP BY ALL HAVING count(*) > 1)
        """
    ).fetchone()[0]
    assert dupes == 0
    assert CRM_WRITEBACK_PLAN in DERIVED_TABLES and CRM_WRITEBACK_PLAN.per_recording


# --- LATEST_WRITES_SQL ----------------------------------------------------------------


def _stage(value, *, model="Opportunity", field="Stage__c"):
    return [{"name": "stage", "value": value, "mappings": [m(model, field)]}]


def test_latest_writes_pick_the_newest_recording_across_partitions(con):
    d1 = [
        # Oldest candidate for Opportunity O.Stage__c.
        recording("r_old", D1, hour=9, crm=FULL_CRM, entityExtractions=_stage("Prospect")),
        # Same createdAt as r_tie_b: the larger recording id wins the tie.
        recording("r_tie_a", D1, hour=15, crm={**FULL_CRM, "opportunity": ref("so2", "O2")},
                  entityExtractions=_stage("A")),
        recording("r_tie_b", D1, hour=15, crm={**FULL_CRM, "opportunity": ref("so2", "O2")},
                  entityExtractions=_stage("B")),
    ]
    d2 = [
        # Newest for O, in a later partition, but created earlier in its day than r_mid.
        recording("r_new", D2, hour=8, crm=FULL_CRM, entityExtractions=_stage("Closed Won")),
        # Newer than everything but not linked: never a candidate.
        recording("r_unlinked", D2, hour=23, entityExtractions=_stage("Lost")),
        # Another connection is another field.
        recording("r_other_ic", D2, hour=1, crm={**FULL_CRM, "integrationConnectionId": "ic9"},
                  entityExtractions=_stage("Other")),
        # A different field of O, written only by an old recording, stays.
        recording("r_amount", D2, hour=2, crm=FULL_CRM, entityExtractions=_stage(5000, field="Amount__c")),
    ]
    load_raw(con, d1, [D1])
    load_raw(con, d2, [D2])
    rebuild_partitions(con, CRM_WRITEBACK_PLAN, [D1, D2])
    latest = con.execute(
        f"SELECT integration_connection_id, external_id, crm_field_name, recording_id, value "
        f"FROM ({LATEST_WRITES_SQL}) ORDER BY ALL"
    ).fetchall()
    assert latest == [
        ("ic", "O", "Amount__c", "r_amount", "5000"),
        ("ic", "O", "Stage__c", "r_new", '"Closed Won"'),
        ("ic", "O2", "Stage__c", "r_tie_b", '"B"'),
        ("ic9", "O", "Stage__c", "r_other_ic", '"Other"'),
    ]
    # Whole plan rows come back, keys included.
    columns = [d[0] for d in con.execute(LATEST_WRITES_SQL).description]
    assert columns == list(CRM_WRITEBACK_PLAN.column_names)


def test_latest_writes_one_per_contact_and_deterministic_within_a_recording(con):
    # One recording maps two extractions to the same contact field: the later one wins,
    # and each contact is its own target.
    ext = [
        {"name": "first", "value": "x", "mappings": [m("Contact", "Note__c")]},
        {"name": "second", "value": "y", "mappings": [m("Contact", "Note__c")]},
    ]
    build(con, [recording("r", D1, crm=FULL_CRM, entityExtractions=ext)])
    latest = con.execute(
        f"SELECT external_id, extraction_name FROM ({LATEST_WRITES_SQL}) ORDER BY ALL"
    ).fetchall()
    assert latest == [("C1", "second"), ("C2", "second"), ("C3", "second")]


def test_latest_writes_on_a_rebuilt_older_partition_do_not_go_backwards(con):
    load_raw(con, [recording("new", D2, crm=FULL_CRM, entityExtractions=_stage("New"))], [D2])
    load_raw(con, [recording("old", D1, crm=FULL_CRM, entityExtractions=_stage("Old"))], [D1])
    # The newer day is built first; rebuilding the older day afterwards must not win.
    rebuild_partitions(con, CRM_WRITEBACK_PLAN, [D2])
    rebuild_partitions(con, CRM_WRITEBACK_PLAN, [D1])
    assert con.execute(f"SELECT recording_id FROM ({LATEST_WRITES_SQL})").fetchall() == [("new",)]


def test_a_b_a_gives_the_third_recording_its_own_key_and_the_field(con):
    """R1 writes A, R2 writes B, R3 writes A again: R3 is the target and its key is not R1's."""
    load_raw(con, [
        recording("r1", D1, hour=8, crm=FULL_CRM, entityExtractions=_stage("A")),
        recording("r2", D1, hour=9, crm=FULL_CRM, entityExtractions=_stage("B")),
    ], [D1])
    load_raw(con, [recording("r3", D2, hour=1, crm=FULL_CRM, entityExtractions=_stage("A"))], [D2])
    rebuild_partitions(con, CRM_WRITEBACK_PLAN, [D1, D2])
    keys = dict(plan(con, "recording_id, idempotency_key"))
    assert len(set(keys.values())) == 3
    latest = con.execute(f"SELECT recording_id, value, idempotency_key FROM ({LATEST_WRITES_SQL})").fetchall()
    assert latest == [("r3", '"A"', keys["r3"])]


def test_latest_writes_skip_a_newer_recording_deleted_since_its_day_was_built(con):
    """The newest recording is deleted and its plan day not yet rebuilt: the next newest
    live recording is the target; once purged too, the one before."""
    load_raw(con, [recording("r1", D1, hour=8, crm=FULL_CRM, entityExtractions=_stage("One"))], [D1])
    load_raw(con, [
        recording("r2", D2, hour=8, crm=FULL_CRM, entityExtractions=_stage("Two")),
        recording("r3", D2, hour=9, crm=FULL_CRM, entityExtractions=_stage("Three")),
    ], [D2])
    rebuild_partitions(con, CRM_WRITEBACK_PLAN, [D1, D2])
    target = f"SELECT recording_id FROM ({LATEST_WRITES_SQL})"
    assert con.execute(target).fetchall() == [("r3",)]
    # Re-ingest D2 with r3 deleted and r2 purged, without rebuilding the plan.
    load_raw(con, [
        recording("r2", D2, hour=8, crm=FULL_CRM, entityExtractions=_stage("Two")),
        recording("r3", D2, hour=9, crm=FULL_CRM, entityExtractions=_stage("Three"), deleted=True),
    ], [D2])
    assert con.execute(target).fetchall() == [("r2",)]
    load_raw(con, [
        recording("r2", D2, hour=8, crm=FULL_CRM, entityExtractions=_stage("Two"),
                  rootDataPurgedAt="2026-01-07T00:00:00.000Z"),
        recording("r3", D2, hour=9, crm=FULL_CRM, entityExtractions=_stage("Three"), deleted=True),
    ], [D2])
    assert con.execute(target).fetchall() == [("r1",)]
    # Rebuilt, the plan agrees.
    rebuild_partitions(con, CRM_WRITEBACK_PLAN, [D2])
    assert con.execute(target).fetchall() == [("r1",)]


BLANKS = ["", "   ", "\t\u00a0\n", [], [""], [None, None], ["", [" ", None]]]


def test_latest_writes_take_the_older_real_value_over_any_newer_blank(con):
    """Blank means "nothing extracted": however many newer recordings map a blank or a
    null, the field's target is the newest real value."""
    load_raw(con, [
        recording("old", D1, hour=8, crm=FULL_CRM, entityExtractions=_stage("Kept")),
        *[recording(f"blank{i}", D1, hour=9 + i, crm=FULL_CRM, entityExtractions=_stage(v))
          for i, v in enumerate([*BLANKS, None])],
    ], [D1])
    # A blank on a newer day cannot hide it either.
    load_raw(con, [recording("newest", D2, hour=1, crm=FULL_CRM, entityExtractions=_stage(""))], [D2])
    rebuild_partitions(con, CRM_WRITEBACK_PLAN, [D1, D2])
    assert con.execute(f"SELECT recording_id, value FROM ({LATEST_WRITES_SQL})").fetchall() == [("old", '"Kept"')]
    # A field that only ever got blanks has no target at all: nothing is sent.
    load_raw(con, [recording("only", D2, hour=2, crm={**FULL_CRM, "opportunity": ref("so2", "O2")},
                             entityExtractions=_stage([""]))], [D2])
    rebuild_partitions(con, CRM_WRITEBACK_PLAN, [D2])
    assert con.execute(f"SELECT external_id FROM ({LATEST_WRITES_SQL})").fetchall() == [("O",)]


def test_blank_and_null_rows_say_why_they_are_not_sent(con):
    values = [*BLANKS, None, 0, 0.0, False, "0", "  x  ", [None, 0], {"k": ""}]
    ext = [{"name": f"e{i}", "value": v, "mappings": [m("Opportunity", f"F{i}")]} for i, v in enumerate(values)]
    build(con, [recording("r", D1, crm=FULL_CRM, entityExtractions=ext),
                recording("u", D1, entityExtractions=ext)])
    rows = plan(con, "extraction_position, plan_status, idempotency_key IS NULL", "recording_id = 'r'")
    assert rows == [(i, "blank", True) for i in range(len(BLANKS))] + [(len(BLANKS), "clear", False)] + [
        (i, "ready", False) for i in range(len(BLANKS) + 1, len(values))]
    # Where to write comes first: an unlinked blank says unlinked.
    assert {s for (s,) in plan(con, "DISTINCT plan_status", "recording_id = 'u'")} == {"unlinked"}
    assert {s for (s,) in plan(con, "DISTINCT plan_status")} <= set(PLAN_STATUSES)


def test_a_clear_holds_the_field_only_where_the_connection_opts_in(con):
    load_raw(con, [
        recording("old", D1, hour=8, crm=FULL_CRM, entityExtractions=_stage("Kept")),
        recording("null", D1, hour=9, crm=FULL_CRM, entityExtractions=_stage(None)),
        # A newer blank string is never a clear, even where clears are allowed.
        recording("empty", D1, hour=10, crm=FULL_CRM, entityExtractions=_stage("")),
    ], [D1])
    rebuild_partitions(con, CRM_WRITEBACK_PLAN, [D1])
    target = "SELECT recording_id, value, plan_status FROM ({}) ORDER BY ALL"
    assert con.execute(target.format(latest_writes_sql())).fetchall() == [("old", '"Kept"', "ready")]
    assert con.execute(target.format(latest_writes_sql("TRUE"))).fetchall() == [("null", "null", "clear")]
    assert con.execute(target.format(latest_writes_sql("p.integration_connection_id = 'other'"))).fetchall() == [
        ("old", '"Kept"', "ready")]


def test_the_sql_blank_rule_is_the_python_one(con):
    """`IS_BLANK` and `is_blank` agree on every shape, and on every whitespace character."""
    values = [None, "", " ", "0", 0, 0.0, False, True, "x", [], [""], [None], [0], ["", "x"], [[""], [[None]]],
              [[], [0]], {}, {"a": None}, [{}], "\u200b", "\ufeff"]
    values += [chr(c) for c in range(0x3100)] + [chr(c) * 3 for c in (0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F)]
    texts = [json.dumps(v) for v in values]
    rows = con.execute(
        f"SELECT v, {IS_BLANK} FROM (SELECT unnest($t::VARCHAR[]) AS v) , LATERAL (SELECT v::JSON AS value)",
        {"t": texts},
    ).fetchall()
    assert len(rows) == len(values)
    assert [v for v, blank in rows if blank != is_blank(json.loads(v))] == []
