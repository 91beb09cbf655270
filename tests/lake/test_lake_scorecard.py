"""The worked consumer example (examples/weekly_rep_scorecard) on a lake: its asset reads
its week's rows through the component's `siro_pandas_reader`, and the pandas route equals
the SQL route run through `duckdb_connection` on the same lake."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg
import duckdb
import pandas as pd

from examples.weekly_rep_scorecard.assets import weekly_rep_scorecard
from examples.weekly_rep_scorecard.definitions import consumer_definitions
from examples.weekly_rep_scorecard.scorecard import scorecard_relation
from siro_assets import SiroComponent
from siro_assets.warehouse.backend import open_warehouse
from siro_assets.warehouse.connection import duckdb_connection
from siro_assets.warehouse.lake import LakeSettings

from .support import day_records, stage, swap_and_rebuild

WEEK = date(2026, 3, 2)  # a Monday
RECORDING_CRM = dg.AssetKey(["siro", "recording_crm"])
EXTRACTIONS = dg.AssetKey(["siro", "recording_entity_extractions"])


def test_the_weekly_scorecard_example_reads_its_week_from_a_lake(catalog_dsn, tmp_path, monkeypatch):
    lake = LakeSettings(catalog=catalog_dsn, data_path=str(tmp_path / "lake_data"), scratch_directory=str(tmp_path))
    days = [WEEK - timedelta(days=1) + timedelta(days=k) for k in range(9)]  # the week and a day each side
    con = open_warehouse(lake=lake)
    st = stage(tmp_path, day_records(days), days)
    swap_and_rebuild(con, st, days)
    st.close()
    con.close()

    monkeypatch.setenv("SIRO_DUCKLAKE_CATALOG", catalog_dsn)
    siro = SiroComponent.resolve_from_dict({"warehouse": {
        "backend": "ducklake", "path": str(tmp_path / "stages" / "w.duckdb"), "data_path": lake.data_path}})
    merged = dg.Definitions.merge(dg.build_defs_for_component(siro),
                                  consumer_definitions(str(tmp_path / "consumer_warehouse.duckdb")))
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [*(merged.resolve_assets_def(key) for key in (RECORDING_CRM, EXTRACTIONS)), weekly_rep_scorecard],
            selection=[weekly_rep_scorecard], partition_key=WEEK.isoformat(), instance=instance,
            resources={key: merged.resources[key] for key in ("siro_pandas_reader", "scorecard_io_manager")},
        )
    assert result.success
    (materialization,) = result.asset_materializations_for_node("rep_scorecards__weekly_rep_scorecard")
    metadata = {k: v.value for k, v in materialization.metadata.items()}
    assert (metadata["first_input_day"], metadata["last_input_day"]) == (WEEK.isoformat(), (WEEK + timedelta(days=6)).isoformat())

    with duckdb_connection(lake=lake, read_only=True) as con:
        in_week = con.execute(
            "SELECT count(*) FROM siro.recording_crm WHERE partition_date BETWEEN $1 AND $1 + 6", [WEEK]
        ).fetchone()[0]
        expected = scorecard_relation(con, WEEK, WEEK + timedelta(days=6)).df()
    assert metadata["input_recordings"] == in_week > 0
    with duckdb.connect(str(tmp_path / "consumer_warehouse.duckdb"), read_only=True) as out:
        stored = out.sql("SELECT * EXCLUDE (week_start) FROM rep_scorecards.weekly_rep_scorecard ORDER BY crm_user").df()
    pd.testing.assert_frame_equal(stored.reset_index(drop=True), expected.reset_index(drop=True), check_dtype=False)
