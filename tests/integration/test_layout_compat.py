"""The `dg` layout move kept what a user's instance and DuckDB file depend on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
from dagster import AssetKey, materialize

from siro_assets.definitions import defs
from tests.support import simulated_siro

ROOT = Path(__file__).resolve().parents[2]

# Asset key -> table: what existing instances (partition history) and files hold.
TABLES = {
    "siro/recordings": "siro.recordings",
    "siro/recording_crm_links": "siro.recording_crm_links",
    "siro/recording_crm": "siro.recording_crm",
    "siro/recording_summaries": "siro.recording_summaries",
    "siro/recording_entity_extractions": "siro.recording_entity_extractions",
    "siro/recording_daily_stats": "siro.recording_daily_stats",
    "siro/crm_writeback_plan": "siro.crm_writeback_plan",
}


def test_materialized_keys_and_table_names_are_unchanged(warehouse):
    keys = [AssetKey.from_user_string(k) for k in TABLES]
    assets = [a for a in defs.assets if any(k in a.keys for k in keys)]
    result = materialize(
        assets, resources={"siro_api": simulated_siro(), "siro_warehouse": warehouse}, partition_key="2026-03-02"
    )
    assert result.success
    materialized = {
        e.asset_key.to_user_string(): e.step_materialization_data.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    assert set(TABLES) <= set(materialized)
    with duckdb.connect(warehouse.database, read_only=True) as con:
        existing = {f"{s}.{t}" for s, t in con.execute("SELECT schema_name, table_name FROM duckdb_tables()").fetchall()}
    for key, table in TABLES.items():
        assert materialized[key]["dagster/table_name"].value == table
        asset_key = AssetKey.from_user_string(key)
        spec = defs.resolve_assets_def(asset_key).specs_by_key[asset_key]
        assert spec.metadata["dagster/table_name"] == table
        assert table in existing
    # Partition keys are the same UTC days, so existing partition history still lines up.
    for key in keys:
        assert defs.resolve_assets_def(key).partitions_def.get_partition_keys_between_indexes(0, 1) == ["2026-01-01"]


def test_dg_list_defs_shows_everything(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIRO_")}
    env.update(DAGSTER_HOME=str(tmp_path), VIRTUAL_ENV=str(Path(sys.executable).parent.parent))
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dg"), "list", "defs", "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    listed = json.loads(result.stdout)
    assert {a["asset_key"] for a in listed["assets"]} >= set(TABLES)
    checks = {c["key"] for c in listed["asset_checks"]}
    assert {"siro/recordings:id_unique", "siro/recording_crm:one_row_per_recording"} <= checks
    assert {j["name"] for j in listed["jobs"]} >= {"siro_recordings_job"}
    assert {s["name"] for s in listed["schedules"]} == {"nightly_recordings_schedule", "partition_freshness_schedule"}
    assert {s["name"] for s in listed["sensors"]} >= {"recordings_updated_sensor"}
    assert {r["name"] for r in listed["resources"]} >= {"siro_api", "siro_warehouse", "siro_crm", "siro_pandas_reader"}
