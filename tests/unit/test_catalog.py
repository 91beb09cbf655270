"""The catalog the UI shows: descriptions, column lineage, code versions, owners and kinds."""

from __future__ import annotations

import dataclasses
import json
from datetime import date

import duckdb
import pytest
from dagster import TableColumnDep

from siro_assets.warehouse.connection import DEFAULT_SCHEMA, use_schema
from siro_assets.pipeline.catalog import column_lineage, raw_code_version
from siro_assets.definitions import defs
from siro_assets.transforms import DERIVED_TABLES, RECORDING_CRM
from siro_assets.warehouse import staging
from siro_assets.warehouse.schema import RECORDINGS_COLUMN_DESCRIPTIONS, RECORDINGS_COLUMN_NAMES
from tests.default_instance import RECORDINGS_KEY
from tests.raw_payloads import load_raw, recording, ref

DAY = date(2026, 1, 5)
# Columns `live_recordings` reads only to choose rows: no column's value comes from them.
ROW_FILTERS = {"deleted", "root_data_purged_at"}


def test_every_raw_column_has_a_description():
    assert set(RECORDINGS_COLUMN_DESCRIPTIONS) == set(RECORDINGS_COLUMN_NAMES)
    assert all(text.strip() for text in RECORDINGS_COLUMN_DESCRIPTIONS.values())


def test_every_derived_column_names_real_raw_sources():
    for table in DERIVED_TABLES:
        for column in table.columns:
            assert column.sources, f"{table.name}.{column.name} has no source columns"
            unknown = set(column.sources) - set(RECORDINGS_COLUMN_NAMES)
            assert not unknown, f"{table.name}.{column.name}: {unknown} are not raw columns"


@pytest.fixture(scope="module")
def loaded() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    use_schema(con, DEFAULT_SCHEMA, create=True)
    rich = {
        "crm": {"integrationConnectionId": "ic", "engagement": ref("se", "E"), "contacts": [ref("sc", "C")]},
        "summary": [{"id": "s1", "name": "Overview", "content": "text"}],
        "entityExtractions": [
            {"name": "roof", "value": "Metal", "mappings": [{"crmModelName": "Contact", "crmFieldName": "Roof"}]}
        ],
    }
    load_raw(con, [recording("r1", DAY, **rich)], [DAY])
    yield con
    con.close()


def _scanned_raw_columns(con: duckdb.DuckDBPyConnection, select: str) -> set[str]:
    """Top-level raw columns whose values DuckDB's plan reads from siro.recordings."""
    plan = json.loads(con.execute("EXPLAIN (FORMAT JSON) " + select, {"partitions": [DAY]}).fetchall()[0][1])
    found: set[str] = set()

    def walk(node: dict) -> None:
        info = node.get("extra_info") or {}
        if isinstance(info, dict) and str(info.get("Table", "")).endswith("recordings"):
            found.update(p.split(".")[0] for p in info.get("Projections", []))
        for child in node.get("children", []):
            walk(child)

    for root in plan:
        walk(root)
    return found


@pytest.mark.parametrize("table", DERIVED_TABLES, ids=lambda t: t.name)
def test_declared_sources_are_what_the_sql_reads(loaded, table):
    # Every column the SQL reads is some column's source (or only chooses rows), and
    # every declared source is really read: the lineage cannot silently go stale.
    scanned = _scanned_raw_columns(loaded, table.select)
    declared = {source for column in table.columns for source in column.sources}
    assert scanned, "the plan shows no scan of siro.recordings"
    assert scanned - ROW_FILTERS <= declared, f"read but not declared: {scanned - ROW_FILTERS - declared}"
    assert declared <= scanned, f"declared but never read: {declared - scanned}"


def test_lineage_points_each_derived_column_at_its_raw_columns():
    lineage = column_lineage(RECORDING_CRM, RECORDINGS_KEY)
    assert set(lineage.deps_by_column) == set(RECORDING_CRM.column_names)
    assert lineage.deps_by_column["engagement_external_id"] == [TableColumnDep(RECORDINGS_KEY, "crm")]
    assert lineage.deps_by_column["recording_id"] == [TableColumnDep(RECORDINGS_KEY, "id")]


def test_code_version_changes_with_the_sql_and_only_then():
    table = RECORDING_CRM
    assert table.fingerprint() == dataclasses.replace(table).fingerprint()
    changed_sql = dataclasses.replace(table, select=table.select.replace("crm IS NOT NULL", "crm IS NULL"))
    assert changed_sql.fingerprint() != table.fingerprint()
    changed_column = dataclasses.replace(table, columns=table.columns[:-1])
    assert changed_column.fingerprint() != table.fingerprint()
    assert dataclasses.replace(table, description="other words").fingerprint() == table.fingerprint()
    assert len({t.fingerprint() for t in DERIVED_TABLES}) == len(DERIVED_TABLES)


def test_raw_code_version_follows_the_staging_sql(monkeypatch):
    before = raw_code_version()
    monkeypatch.setattr(staging, "_TYPED_SELECT", staging._TYPED_SELECT + " -- changed")
    assert raw_code_version() != before


ASSET_GRAPH = defs.resolve_asset_graph()
SIRO_KEYS = sorted(ASSET_GRAPH.get_all_asset_keys(), key=lambda k: k.to_user_string())


@pytest.mark.parametrize("key", SIRO_KEYS, ids=lambda k: k.to_user_string())
def test_every_asset_carries_its_catalog_entry(key):
    node = ASSET_GRAPH.get(key)
    assert node.owners == ["team:revenue-data"]
    assert "duckdb" in node.kinds
    assert node.code_version
    assert node.description
    assert node.metadata["partition_expr"] == "partition_date"
    schema = node.metadata["dagster/column_schema"]
    assert schema.columns and all(column.description for column in schema.columns)
    if key == RECORDINGS_KEY:
        assert node.kinds == {"siro", "duckdb"}
        assert node.freshness_policy is not None
    else:
        lineage = node.metadata["dagster/column_lineage"]
        assert set(lineage.deps_by_column) == {column.name for column in schema.columns}


def test_one_column_builder_serves_the_raw_derived_and_log_schemas():
    from siro_assets.crm.ledger import LOG_COLUMNS
    from siro_assets.pipeline.catalog import table_column
    from siro_assets.pipeline.writebacks.assets import LOG_SCHEMA

    column = table_column("n", "BIGINT NOT NULL", "a count")
    assert (column.name, column.type, column.description) == ("n", "BIGINT", "a count")
    assert column.constraints.nullable is False
    assert table_column("t", "VARCHAR", "text").constraints.nullable is True
    assert LOG_SCHEMA.columns == [table_column(name, sql_type, description)
                                  for name, sql_type, description, _ in LOG_COLUMNS]
