"""A real Dagster run of `siro/crm_writeback_plan` and its checks on a DuckDB file.

Raw rows come from hand-written payloads through the staging helper; the asset is
materialized with `dagster.materialize`, then a late CRM link is re-ingested and the
partition rematerialized, as the `updatedAt` sensor would.
"""

from __future__ import annotations

from datetime import date

from dagster import AssetKey, build_asset_check_context, materialize

from siro_assets.pipeline.checks import derived_table_checks
from tests.default_instance import SETTINGS, derived_assets, recordings_pipeline_selection
from siro_assets.definitions import defs
from siro_assets.transforms import CRM_WRITEBACK_PLAN, LATEST_WRITES_SQL
from siro_assets.warehouse.connection import duckdb_connection

from tests.raw_payloads import load_raw, recording, ref

D1, D2 = date(2026, 1, 5), date(2026, 1, 6)
KEY = AssetKey(["siro", "crm_writeback_plan"])
crm_writeback_plan = next(a for a in derived_assets if a.key == KEY)
CRM = {
    "integrationConnectionId": "ic",
    "opportunity": ref("so", "O"),
    "contacts": [ref("sc1", "C1"), ref("sc2", "C2")],
}
EXTRACTIONS = [
    {"name": "stage", "value": "Won", "mappings": [{"crmModelName": "Opportunity", "crmFieldName": "Stage__c"}]},
    {"name": "note", "value": ["a", 1], "mappings": [{"crmModelName": "Contact", "crmFieldName": "Note__c"},
                                                     {"crmModelName": "Lead", "crmFieldName": "Note__c"}]},
    {"name": "unmapped", "value": 3, "mappings": None},
]
CHECKS = derived_table_checks(CRM_WRITEBACK_PLAN, SETTINGS)


def seed(warehouse, day, records):
    with duckdb_connection(warehouse.database) as con:
        load_raw(con, records, [day])


def query(warehouse, sql):
    with duckdb_connection(warehouse.database, read_only=True) as con:
        return con.execute(sql).fetchall()


def run(warehouse, key):
    result = materialize([crm_writeback_plan, *CHECKS], resources={"siro_warehouse": warehouse}, partition_key=key)
    assert result.success
    return result


def test_materialize_plan_then_a_late_link_turns_ready(warehouse):
    assert KEY in recordings_pipeline_selection.resolve(defs.resolve_asset_graph())
    assert {d.check_key.name for d in CHECKS} == {
        "recording_ids_exist", "no_deleted_or_purged_rows"
    }
    seed(warehouse, D1, [
        recording("linked", D1, crm=CRM, entityExtractions=EXTRACTIONS),
        recording("late", D1, hour=12, entityExtractions=EXTRACTIONS),
        recording("gone", D1, crm=CRM, entityExtractions=EXTRACTIONS, deleted=True),
    ])
    seed(warehouse, D2, [recording("next_day", D2, crm=CRM, entityExtractions=EXTRACTIONS)])

    result = run(warehouse, "2026-01-05")
    assert all(e.passed for e in result.get_asset_check_evaluations())
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert meta["dagster/row_count"].value == 7  # linked: opportunity, 2 contacts, lead; late: 3
    assert meta["dagster/table_name"].value == "siro.crm_writeback_plan"
    status = "SELECT recording_id, crm_field_name, object_type, external_id, plan_status FROM siro.crm_writeback_plan ORDER BY ALL"
    assert query(warehouse, status) == [
        ("late", "Note__c", "contact", None, "unlinked"),
        ("late", "Note__c", "lead", None, "unlinked"),
        ("late", "Stage__c", "opportunity", None, "unlinked"),
        ("linked", "Note__c", "contact", "C1", "ready"),
        ("linked", "Note__c", "contact", "C2", "ready"),
        ("linked", "Note__c", "lead", None, "no_target"),
        ("linked", "Stage__c", "opportunity", "O", "ready"),
    ]

    # "late" gets linked to another opportunity; the sensor re-pulls D1 and rematerializes it.
    seed(warehouse, D1, [
        recording("linked", D1, crm=CRM, entityExtractions=EXTRACTIONS),
        recording("late", D1, hour=12, updatedAt="2026-01-08T09:00:00.000Z",
                  crm={**CRM, "opportunity": ref("so2", "O2"), "lead": ref("sl", "L")},
                  entityExtractions=EXTRACTIONS),
        recording("gone", D1, crm=CRM, entityExtractions=EXTRACTIONS, deleted=True),
    ])
    keys_before = dict(query(
        warehouse,
        "SELECT external_id, idempotency_key FROM siro.crm_writeback_plan "
        "WHERE recording_id = 'linked' AND plan_status = 'ready'",
    ))
    result = run(warehouse, "2026-01-05")
    assert all(e.passed for e in result.get_asset_check_evaluations())
    assert query(warehouse, "SELECT plan_status, count(*) FROM siro.crm_writeback_plan "
                            "WHERE recording_id = 'late' GROUP BY 1") == [("ready", 4)]
    assert dict(query(
        warehouse,
        "SELECT external_id, idempotency_key FROM siro.crm_writeback_plan "
        "WHERE recording_id = 'linked' AND plan_status = 'ready'",
    )) == keys_before
    run(warehouse, "2026-01-06")

    # Newest wins per field: next_day (D2) beats both D1 recordings on O and the contacts;
    # "late" alone writes O2 and the lead.
    assert query(
        warehouse,
        f"SELECT external_id, crm_field_name, recording_id FROM ({LATEST_WRITES_SQL}) ORDER BY ALL",
    ) == [
        ("C1", "Note__c", "next_day"),
        ("C2", "Note__c", "next_day"),
        ("L", "Note__c", "late"),
        ("O", "Stage__c", "next_day"),
        ("O2", "Stage__c", "late"),
    ]

    # The checks catch a planted row of the deleted recording.
    with duckdb_connection(warehouse.database) as con:
        con.execute(
            "INSERT INTO siro.crm_writeback_plan SELECT * REPLACE ('gone' AS recording_id) "
            "FROM siro.crm_writeback_plan WHERE recording_id = 'linked' LIMIT 1"
        )
    outcomes = {d.check_key.name: d(build_asset_check_context(resources={"siro_warehouse": warehouse})).passed for d in CHECKS}
    assert outcomes == {"recording_ids_exist": True, "no_deleted_or_purged_rows": False}
