"""An instance's schema: which names are accepted, where connections put tables, and the
organization guard per schema."""

from __future__ import annotations

import pytest
from dagster import build_defs_for_component

from siro_assets import SiroComponent
from siro_assets.pipeline.settings import PipelineSettings
from siro_assets.warehouse.connection import checked_schema, open_duckdb
from siro_assets.warehouse.identity import OrganizationMismatchError, claim_organization, recorded_organization
from siro_assets.warehouse.schema import ensure_schema
from siro_assets.warehouse.tables import table_exists, transaction


@pytest.mark.parametrize("name", ["west", "siro_west", "_x", "emea2", "user", "a" * 63])
def test_lower_case_identifiers_are_schemas(name):
    assert checked_schema(name) == name
    assert PipelineSettings(table_schema=name).table_name("recordings") == f"{name}.recordings"


@pytest.mark.parametrize("name", ["West", "we-st", "2west", "", "we st", 'w"e', "a" * 64,
                                  "siro_meta", "information_schema", "order", "select"])
def test_other_names_are_refused(name):
    with pytest.raises(ValueError, match="schema"):
        checked_schema(name)
    with pytest.raises(ValueError):
        PipelineSettings(table_schema=name)


def test_the_component_names_the_attribute_of_a_bad_schema():
    with pytest.raises(Exception, match="schema"):
        build_defs_for_component(SiroComponent.resolve_from_yaml("warehouse: {schema: West}\n"))


def test_a_writer_creates_its_schema_and_unqualified_tables_land_there(tmp_path):
    path = tmp_path / "w.duckdb"
    with open_duckdb(path, schema="west") as con:
        ensure_schema(con)
        assert con.execute("SELECT current_schema()").fetchone()[0] == "west"
        assert table_exists(con, "recordings") and table_exists(con, "west.recordings")
        assert not table_exists(con, "siro.recordings")
    with open_duckdb(path) as con:  # the default schema: nothing of west
        assert con.execute("SELECT current_schema()").fetchone()[0] == "siro"
        assert not table_exists(con, "recordings")


def test_a_reader_of_a_schema_never_written_sees_nothing_and_creates_nothing(tmp_path):
    path = tmp_path / "w.duckdb"
    with open_duckdb(path, schema="west") as con:
        ensure_schema(con)
    with open_duckdb(path, read_only=True, schema="east") as con:
        assert not table_exists(con, "recordings")
        assert recorded_organization(con) is None
        schemas = {row[0] for row in con.execute(
            "SELECT schema_name FROM duckdb_schemas() WHERE database_name = current_database()").fetchall()}
    assert "east" not in schemas


def _claim(path, schema: str, organization: str) -> None:
    with open_duckdb(path, schema=schema) as con, transaction(con):
        claim_organization(con, organization)


def test_each_schema_of_one_file_records_its_own_organization(tmp_path):
    path = tmp_path / "shared.duckdb"
    _claim(path, "siro", "org_a")
    _claim(path, "west", "org_b")  # another organization, its own schema: allowed
    _claim(path, "west", "org_b")
    with pytest.raises(OrganizationMismatchError, match="org_b"):
        _claim(path, "west", "org_a")
    with pytest.raises(OrganizationMismatchError, match="org_a"):
        _claim(path, "siro", "org_b")
    with open_duckdb(path, read_only=True) as con:
        assert recorded_organization(con) == "org_a"
        # The default schema keeps the table warehouses written before this change have.
        assert table_exists(con, "siro_meta.organization")
