"""Pure transformation tests: hand-written API payloads in, exact derived rows out.

Each test loads payloads into an in-memory DuckDB through the real staging path, runs
`rebuild_partitions`, and compares whole rows. Positions are 0-based.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date

import duckdb
import pytest

from siro_assets.transforms import (
    DERIVED_TABLES,
    RECORDING_CRM,
    RECORDING_CRM_LINKS,
    RECORDING_DAILY_STATS,
    RECORDING_ENTITY_EXTRACTIONS,
    RECORDING_SUMMARIES,
    rebuild_partitions,
)

from tests.raw_payloads import load_raw, recording, ref

D1 = date(2026, 1, 5)
D2 = date(2026, 1, 6)


def rows(con, table, columns="*", where="TRUE"):
    """All rows of a derived table, sorted, without partition_date unless asked for."""
    if columns == "*":
        columns = ", ".join(c for c in table.column_names if c != "partition_date")
    return con.execute(
        f"SELECT {columns} FROM {table.name} WHERE {where} ORDER BY ALL"
    ).fetchall()


def rebuild_all(con, partitions):
    return {t.name: rebuild_partitions(con, t, partitions) for t in DERIVED_TABLES}


# --- CRM -----------------------------------------------------------------------------

CRM_CASES = [
    recording("r_null", D1, crm=None),
    recording("r_ic_only", D1, crm={"integrationConnectionId": "ic1"}),
    recording("r_users", D1, crm={"integrationConnectionId": "ic1", "users": [ref("su1", "U1")]}),
    recording(
        "r_all",
        D1,
        crm={
            "integrationConnectionId": "ic2",
            "users": [ref("su1", "U1"), ref("su2", "U2")],
            "engagement": ref("se", "E"),
            "opportunity": ref("so", "O"),
            "contacts": [ref("sc1", "C1")],
            "account": ref("sa", "A"),
            "lead": ref("sl", "L"),
        },
    ),
    recording(
        "r_contacts",
        D1,
        crm={
            "integrationConnectionId": "ic1",
            "contacts": [ref("sc3", "C3"), ref("sc1", "C1"), ref("sc2", "C2")],
        },
    ),
    recording(
        "r_empty",
        D1,
        crm={
            "integrationConnectionId": "ic1",
            "users": [],
            "engagement": None,
            "opportunity": None,
            "contacts": [],
            "account": None,
            "lead": None,
        },
    ),
    recording("r_missing", D1, crm={"engagement": ref("se9", "E9")}),
    recording("r_no_key", D1, drop=["crm"]),
]


def test_crm_links_long_form_every_combination(con):
    load_raw(con, CRM_CASES, [D1])
    assert rebuild_partitions(con, RECORDING_CRM_LINKS, [D1]) == 12
    assert rows(con, RECORDING_CRM_LINKS) == sorted(
        [
            ("r_users", "ic1", "user", 0, "su1", "U1"),
            ("r_all", "ic2", "user", 0, "su1", "U1"),
            ("r_all", "ic2", "user", 1, "su2", "U2"),
            ("r_all", "ic2", "engagement", 0, "se", "E"),
            ("r_all", "ic2", "opportunity", 0, "so", "O"),
            ("r_all", "ic2", "contact", 0, "sc1", "C1"),
            ("r_all", "ic2", "account", 0, "sa", "A"),
            ("r_all", "ic2", "lead", 0, "sl", "L"),
            ("r_contacts", "ic1", "contact", 0, "sc3", "C3"),
            ("r_contacts", "ic1", "contact", 1, "sc1", "C1"),
            ("r_contacts", "ic1", "contact", 2, "sc2", "C2"),
            ("r_missing", None, "engagement", 0, "se9", "E9"),
        ],
        key=lambda r: tuple("" if v is None else str(v) for v in r),
    )


def _wide(rid, ic=None, eng=(None, None), opp=(None, None), acc=(None, None), lead=(None, None),
          contacts=(), users=(), linked=True):
    return (
        rid, ic, eng[1], opp[1], acc[1], lead[1],
        [c[1] for c in contacts], [u[1] for u in users],
        eng[0], opp[0], acc[0], lead[0],
        [c[0] for c in contacts], [u[0] for u in users],
        linked,
    )


def test_crm_wide_form_one_row_per_recording(con):
    load_raw(con, CRM_CASES, [D1])
    assert rebuild_partitions(con, RECORDING_CRM, [D1]) == len(CRM_CASES)
    columns = ", ".join(c for c in RECORDING_CRM.column_names if c not in ("partition_date", "created_at"))
    assert rows(con, RECORDING_CRM, columns) == sorted(
        [
            _wide("r_null", linked=False),
            _wide("r_no_key", linked=False),
            _wide("r_ic_only", "ic1"),
            _wide("r_users", "ic1", users=[("su1", "U1")]),
            _wide(
                "r_all", "ic2", eng=("se", "E"), opp=("so", "O"), acc=("sa", "A"), lead=("sl", "L"),
                contacts=[("sc1", "C1")], users=[("su1", "U1"), ("su2", "U2")],
            ),
            _wide("r_contacts", "ic1", contacts=[("sc3", "C3"), ("sc1", "C1"), ("sc2", "C2")]),
            _wide("r_empty", "ic1"),
            _wide("r_missing", eng=("se9", "E9")),
        ]
    )
    created = con.execute(
        "SELECT created_at::VARCHAR FROM siro.recording_crm WHERE recording_id = 'r_all'"
    ).fetchone()[0]
    assert created.startswith("2026-01-05 10:00:00")


def test_crm_reference_without_any_id_is_not_a_link_in_either_form(con):
    load_raw(
        con,
        [recording("r", D1, crm={"integrationConnectionId": "ic", "contacts": [{}, ref("sc", "C")],
                                 "account": {}})],
        [D1],
    )
    rebuild_partitions(con, RECORDING_CRM_LINKS, [D1])
    rebuild_partitions(con, RECORDING_CRM, [D1])
    # Position stays the API array index, so the surviving contact keeps index 1.
    assert rows(con, RECORDING_CRM_LINKS) == [("r", "ic", "contact", 1, "sc", "C")]
    assert rows(con, RECORDING_CRM, "contact_external_ids, contact_siro_ids, account_external_id") == [
        (["C"], ["sc"], None)
    ]


# --- summaries ---------------------------------------------------------------------

UNICODE = "Grüße, naïve café — 日本語のまとめ 😀🏠 \u200b\n\tend"
LONG = ("Ω" + "x" * 99) * 200  # 20,000 characters


def test_summaries_sections_in_order_and_text_intact(con):
    load_raw(
        con,
        [
            recording(
                "r1", D1,
                summary=[
                    {"id": "s1", "name": "Overview", "content": UNICODE},
                    {"id": "s2", "name": "Détails", "content": LONG},
                    {"id": "s3", "name": "Next steps", "content": ""},
                ],
            ),
            recording("r_empty", D1, summary=[]),
            recording("r_absent", D1, drop=["summary"]),
            recording("r_null", D1, summary=None),
        ],
        [D1],
    )
    assert rebuild_partitions(con, RECORDING_SUMMARIES, [D1]) == 3
    assert rows(con, RECORDING_SUMMARIES) == [
        ("r1", 0, "s1", "Overview", UNICODE),
        ("r1", 1, "s2", "Détails", LONG),
        ("r1", 2, "s3", "Next steps", ""),
    ]
    assert len(LONG) == 20_000


# --- entity extractions ---------------------------------------------------------------

MAP_A = {"crmModelName": "Opportunity", "crmFieldName": "Roof_Type__c"}
MAP_B = {"crmModelName": "Account", "crmFieldName": "Roof__c"}
MAP_C = {"crmModelName": "Contact", "crmFieldName": "Notes__c"}

EXTRACTIONS = [
    {"name": "roof", "value": "Metal", "mappings": [MAP_A]},
    {"name": "squares", "value": 42, "mappings": None},
    {"name": "price", "value": 1234.75, "mappings": []},
    {"name": "financing", "value": True, "mappings": [MAP_A, MAP_B, MAP_C]},
    {"name": "hoa", "value": False},
    {"name": "competitor", "value": None, "mappings": [MAP_B]},
    {"name": "absent"},
    {"name": "colors", "value": ["red", "grün"], "mappings": None},
    {"name": "mixed", "value": [1, "two", None, True, 2.5], "mappings": None},
    {"name": "blank", "value": "", "mappings": None},
    {"name": "unicode", "value": UNICODE, "mappings": None},
    {"name": "negative", "value": -3, "mappings": None},
    {"name": "empty_list", "value": [], "mappings": None},
]


def test_extractions_every_value_shape_and_mapping_form(con):
    load_raw(con, [recording("r", D1, entityExtractions=EXTRACTIONS)], [D1])
    assert rebuild_partitions(con, RECORDING_ENTITY_EXTRACTIONS, [D1]) == 15
    a, b, c = (("Opportunity", "Roof_Type__c"), ("Account", "Roof__c"), ("Contact", "Notes__c"))
    none = (None, None)
    expected = [
        (0, "roof", '"Metal"', "Metal", "string", *a, 0),
        (1, "squares", "42", "42", "number", *none, None),
        (2, "price", "1234.75", "1234.75", "number", *none, None),
        (3, "financing", "true", "true", "boolean", *a, 0),
        (3, "financing", "true", "true", "boolean", *b, 1),
        (3, "financing", "true", "true", "boolean", *c, 2),
        (4, "hoa", "false", "false", "boolean", *none, None),
        (5, "competitor", "null", None, "null", *b, 0),
        (6, "absent", "null", None, "null", *none, None),
        (7, "colors", '["red","grün"]', "red, grün", "array", *none, None),
        (8, "mixed", '[1,"two",null,true,2.5]', "1, two, true, 2.5", "array", *none, None),
        (9, "blank", '""', "", "string", *none, None),
        (10, "unicode", json.dumps(UNICODE, ensure_ascii=False), UNICODE, "string", *none, None),
        (11, "negative", "-3", "-3", "number", *none, None),
        (12, "empty_list", "[]", "", "array", *none, None),
    ]
    got = con.execute(
        "SELECT position, name, value, value_text, value_type, crm_model_name, crm_field_name, "
        "mapping_position FROM siro.recording_entity_extractions ORDER BY position, mapping_position"
    ).fetchall()
    # DuckDB may re-serialise JSON; compare values as parsed JSON, everything else exactly.
    assert [(*g[:2], json.loads(g[2]), *g[3:]) for g in got] == [
        (*e[:2], json.loads(e[2]), *e[3:]) for e in expected
    ]


def test_extraction_values_stay_typed_json(con):
    load_raw(con, [recording("r", D1, entityExtractions=EXTRACTIONS)], [D1])
    rebuild_partitions(con, RECORDING_ENTITY_EXTRACTIONS, [D1])
    typed = dict(
        con.execute(
            """
            SELECT name, json_type(value) FROM siro.recording_entity_extractions
            WHERE mapping_position IS NULL OR mapping_position = 0
            """
        ).fetchall()
    )
    assert typed["squares"] in {"BIGINT", "UBIGINT"}
    assert typed["price"] == "DOUBLE"
    assert typed["financing"] == "BOOLEAN"
    assert typed["competitor"] == typed["absent"] == "NULL"
    assert typed["mixed"] == "ARRAY"
    # A number is usable as a number without parsing text.
    total = con.execute(
        "SELECT sum(value::DOUBLE) FROM siro.recording_entity_extractions WHERE value_type = 'number'"
    ).fetchone()[0]
    assert total == 42 + 1234.75 - 3


def test_no_extractions_no_rows(con):
    load_raw(
        con,
        [recording("r_empty", D1, entityExtractions=[]), recording("r_absent", D1, drop=["entityExtractions"])],
        [D1],
    )
    assert rebuild_partitions(con, RECORDING_ENTITY_EXTRACTIONS, [D1]) == 0


# --- deletion, purge, idempotence, partitions --------------------------------------------


def _rich(rid: str, day: date, **fields) -> dict:
    """A recording that produces rows in every per-recording table."""
    defaults = {
        "crm": {"integrationConnectionId": "ic", "engagement": ref(f"s{rid}", f"E{rid}")},
        "summary": [{"id": f"s-{rid}", "name": "Overview", "content": "text"}],
        "entityExtractions": [{"name": "roof", "value": "Metal", "mappings": [MAP_A]}],
    }
    return recording(rid, day, **{**defaults, **fields})


PER_RECORDING = [t for t in DERIVED_TABLES if t.per_recording]


def _ids(con, table):
    return sorted({r[0] for r in con.execute(f"SELECT recording_id FROM {table.name}").fetchall()})


def test_deleted_and_purged_recordings_have_no_derived_rows(con):
    load_raw(
        con,
        [
            _rich("live", D1),
            _rich("gone", D1, deleted=True, deletedAt="2026-01-05T12:00:00.000Z"),
            _rich("purged", D1, rootDataPurgedAt="2026-01-05T13:00:00.000Z"),
            _rich("both", D1, deleted=True, rootDataPurgedAt="2026-01-05T13:00:00.000Z"),
        ],
        [D1],
    )
    rebuild_all(con, [D1])
    for table in PER_RECORDING:
        assert _ids(con, table) == ["live"], table.name
    # The raw table still holds them, flagged.
    assert con.execute("SELECT count(*) FROM siro.recordings").fetchone()[0] == 4


def test_rebuild_is_idempotent(con):
    load_raw(con, [*CRM_CASES, _rich("x", D1, entityExtractions=EXTRACTIONS)], [D1])
    first = rebuild_all(con, [D1])
    snapshot = {t.name: rows(con, t) for t in DERIVED_TABLES}
    second = rebuild_all(con, [D1])
    assert first == second
    assert {t.name: rows(con, t) for t in DERIVED_TABLES} == snapshot


@pytest.mark.parametrize(
    "change",
    [
        {"deleted": True, "deletedAt": "2026-01-07T09:00:00.000Z"},
        {"rootDataPurgedAt": "2026-01-07T09:00:00.000Z"},
    ],
    ids=["deleted", "purged"],
)
def test_later_deletion_or_purge_removes_rows_on_rebuild(con, change):
    load_raw(con, [_rich("a", D1), _rich("b", D1, hour=11)], [D1])
    load_raw(con, [_rich("c", D2)], [D2])
    rebuild_all(con, [D1, D2])
    for table in PER_RECORDING:
        assert _ids(con, table) == ["a", "b", "c"]

    # The next pull of D1 sees "a" deleted (or purged); only D1 is rebuilt.
    load_raw(con, [_rich("a", D1, updatedAt="2026-01-07T09:00:00.000Z", **change), _rich("b", D1, hour=11)], [D1])
    counts = rebuild_all(con, [D1])
    for table in PER_RECORDING:
        assert _ids(con, table) == ["b", "c"], table.name
    assert counts["recording_crm"] == 1
    stats = rows(con, RECORDING_DAILY_STATS, "partition_date, recordings, active_recordings")
    assert stats == [(D1, 2, 1), (D2, 1, 1)]


def test_rebuild_touches_only_the_given_partitions(con):
    load_raw(con, [_rich("a", D1), _rich("c", D2)], [D1, D2])
    rebuild_partitions(con, RECORDING_SUMMARIES, [D1, D2])
    # D2's raw rows vanish (e.g. a bad pull); rebuilding D1 must not touch D2's rows.
    load_raw(con, [], [D2])
    assert rebuild_partitions(con, RECORDING_SUMMARIES, [D1]) == 1
    assert _ids(con, RECORDING_SUMMARIES) == ["a", "c"]
    assert rebuild_partitions(con, RECORDING_SUMMARIES, [D2]) == 0
    assert _ids(con, RECORDING_SUMMARIES) == ["a"]


def test_failed_rebuild_rolls_back_to_previous_rows(con):
    load_raw(con, [_rich("a", D1)], [D1])
    rebuild_partitions(con, RECORDING_SUMMARIES, [D1])
    broken = dataclasses.replace(
        RECORDING_SUMMARIES,
        select=RECORDING_SUMMARIES.select.replace("section.content", "error('boom')::VARCHAR"),
    )
    with pytest.raises(duckdb.Error, match="boom"):
        rebuild_partitions(con, broken, [D1])
    assert rows(con, RECORDING_SUMMARIES) == [("a", 0, "s-a", "Overview", "text")]


def test_rebuild_on_empty_warehouse_creates_empty_tables(con):
    counts = rebuild_all(con, [D1])
    assert counts == {t.name: (1 if t is RECORDING_DAILY_STATS else 0) for t in DERIVED_TABLES}


# --- daily stats ------------------------------------------------------------------------


def test_daily_stats_definitions(con):
    load_raw(
        con,
        [
            _rich("a", D1, durationInMilliseconds=1_000),  # linked, summarised, 1 extraction
            recording("b", D1, durationInMilliseconds=3_000,
                      entityExtractions=[{"name": "x", "value": 1}, {"name": "y", "value": 2}]),
            _rich("del", D1, deleted=True, durationInMilliseconds=99_000),
            _rich("pur", D1, rootDataPurgedAt="2026-01-05T13:00:00.000Z"),
        ],
        [D1],
    )
    assert rebuild_partitions(con, RECORDING_DAILY_STATS, [D1, D2]) == 2
    assert rows(con, RECORDING_DAILY_STATS, ", ".join(RECORDING_DAILY_STATS.column_names)) == [
        (D1, 4, 1, 1, 2, 1, 0.5, 1, 0.5, 3, 2000.0),
        (D2, 0, 0, 0, 0, 0, None, 0, None, 0, None),
    ]


# --- reading only the typed columns -------------------------------------------------------


@pytest.mark.parametrize("table", DERIVED_TABLES, ids=lambda t: t.name)
def test_transforms_never_read_the_payload_column(con, table):
    load_raw(con, [_rich("a", D1)], [D1])
    plan = "\n".join(
        row[1] for row in con.execute("EXPLAIN " + table.select, {"partitions": [D1]}).fetchall()
    )
    assert "siro.recordings" in plan
    assert "payload" not in plan
