"""`warehouse.schema` is a real attribute: an instance's tables live in its own schema,
and two instances sharing one warehouse file never see each other's rows."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
from dagster import (
    AssetIn,
    AssetKey,
    DagsterInstance,
    Definitions,
    asset,
    build_defs_for_component,
    materialize,
)

from siro_assets import SiroComponent
from siro_assets.transforms import CRM_WRITEBACK_PLAN, DERIVED_TABLES

DAY = "2026-03-02"
TABLES = ["recordings", *(table.name for table in DERIVED_TABLES)]


def _component(
    path: Path, *, prefix: str = "siro", schema: str | None = None, seed: int = 7, per_day: int = 40
) -> SiroComponent:
    warehouse = {"path": str(path)} | ({"schema": schema} if schema else {})
    simulator = {"enabled": True, "seed": seed, "recordings_per_day": per_day}
    return SiroComponent.resolve_from_dict({
        "key_prefix": prefix,
        "api": {"token_env": f"{prefix.upper()}_TOKEN", "simulator": simulator},
        "warehouse": warehouse,
    })


def _run_tables(defs: Definitions, prefix: str, instance: DagsterInstance):
    """The instance's recordings job for DAY, on the raw table, the derived tables (the
    writeback plan among them) and their checks; not the CRM delivery."""
    result = defs.resolve_job_def(f"{prefix}_recordings_job").execute_in_process(
        instance=instance, partition_key=DAY, asset_selection=[AssetKey([prefix, name]) for name in TABLES],
    )
    assert result.success
    return result


def _tables_by_schema(path: Path) -> dict[str, set[str]]:
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute("SELECT schema_name, table_name FROM duckdb_tables()").fetchall()
    found: dict[str, set[str]] = {}
    for schema, table in rows:
        found.setdefault(schema, set()).add(table)
    return found


def _ids(path: Path, schema: str) -> list[str]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(f"SELECT list(id ORDER BY id) FROM {schema}.recordings").fetchall()[0][0]


def test_an_instance_with_schema_west_writes_its_tables_to_west_only(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    defs = build_defs_for_component(_component(path, schema="west"))
    with DagsterInstance.ephemeral() as instance:
        result = _run_tables(defs, "siro", instance)
    # Every warehouse check (the freshness check reads Dagster's instance, not the tables,
    # and fails for a day long past).
    checks = [c for c in result.get_asset_check_evaluations() if c.check_name != "yesterday_partition_complete"]
    assert len(checks) >= 10 and all(c.passed for c in checks), [c.check_name for c in checks if not c.passed]

    tables = _tables_by_schema(path)
    assert set(TABLES) <= tables["west"]
    assert "siro" not in tables  # not even an empty schema
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute(f"SELECT count(*) FROM west.{CRM_WRITEBACK_PLAN.name}").fetchone()[0] > 0

    # The catalog names the table where it is.
    materialized = {
        event.asset_key.path[-1]: event.materialization.metadata["dagster/table_name"].value
        for event in result.get_asset_materialization_events()
    }
    assert materialized == {name: f"west.{name}" for name in TABLES}
    spec = defs.resolve_assets_def(AssetKey(["siro", "recordings"])).specs_by_key[AssetKey(["siro", "recordings"])]
    assert spec.metadata["dagster/table_name"] == "west.recordings"
    described = [spec.description for checks in defs.asset_checks for spec in checks.check_specs
                 if spec.asset_key == AssetKey(["siro", "recording_crm"])]
    assert described and all("west.recordings" in text and "siro." not in text for text in described)


def test_two_instances_in_one_file_each_keep_their_own_schema(tmp_path):
    path = tmp_path / "shared.duckdb"
    siro = build_defs_for_component(_component(path, seed=7))
    west = build_defs_for_component(_component(path, prefix="siro_west", schema="west", seed=11))
    defs = Definitions.merge(siro, west)
    defs.get_repository_def().load_all_definitions()
    with DagsterInstance.ephemeral() as instance:
        _run_tables(defs, "siro_west", instance)
        assert "siro" not in _tables_by_schema(path)  # a run of one touches nothing of the other
        west_alone = _ids(path, "west")
        _run_tables(defs, "siro", instance)

    tables = _tables_by_schema(path)
    assert set(TABLES) <= tables["siro"] and set(TABLES) <= tables["west"]
    assert _ids(path, "west") == west_alone  # the other instance's run left west as it was
    siro_ids = _ids(path, "siro")
    assert siro_ids and west_alone and set(siro_ids).isdisjoint(west_alone)
    # Each instance records its organization for its own schema.
    assert {"organization", "organization_west"} <= tables["siro_meta"]


def test_the_pandas_reader_of_a_west_instance_reads_west(tmp_path):
    path = tmp_path / "shared.duckdb"
    other = build_defs_for_component(_component(path, seed=7, per_day=5))
    component = _component(path, prefix="siro_west", schema="west", seed=11)
    west = build_defs_for_component(component)
    stats_key = AssetKey(["siro_west", "recording_daily_stats"])
    seen: list[pd.DataFrame] = []

    @asset(
        ins={"stats": AssetIn(key=stats_key, input_manager_key="siro_west_pandas_reader")},
        partitions_def=component.pipeline_settings().partitions_def,
    )
    def west_consumer(stats: pd.DataFrame) -> None:
        seen.append(stats)

    with DagsterInstance.ephemeral() as instance:
        _run_tables(other, "siro", instance)  # schema siro holds another organization's rows
        _run_tables(west, "siro_west", instance)
        result = materialize(
            [west.resolve_assets_def(stats_key), west_consumer],
            selection=[west_consumer.key],
            partition_key=DAY,
            instance=instance,
            resources={"siro_west_pandas_reader": west.resources["siro_west_pandas_reader"]},
        )
    assert result.success
    with duckdb.connect(str(path), read_only=True) as con:
        expected = con.execute("SELECT recordings FROM west.recording_daily_stats WHERE partition_date = ?",
                               [DAY]).fetchall()
        siro_side = con.execute("SELECT recordings FROM siro.recording_daily_stats WHERE partition_date = ?",
                                [DAY]).fetchall()
    assert expected and siro_side and expected != siro_side  # reading the wrong schema would show
    assert seen[0]["recordings"].tolist() == [row[0] for row in expected]
    assert seen[0]["partition_date"].astype(str).str[:10].tolist() == [DAY]


def test_the_crm_delivery_of_a_west_instance_keeps_its_ledger_in_west(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    defs = build_defs_for_component(_component(path, schema="west"))
    with DagsterInstance.ephemeral() as instance:
        assert defs.resolve_job_def("siro_recordings_job").execute_in_process(
            instance=instance, partition_key=DAY).success
    tables = _tables_by_schema(path)
    assert {"crm_writeback_state", "crm_writeback_log", "crm_outbox"} <= tables["west"]
    assert "siro" not in tables
