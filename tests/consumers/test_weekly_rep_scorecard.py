"""A user's own asset consuming siro tables: the worked example in examples/weekly_rep_scorecard.

The consumer module merges its Definitions with the project's, reads siro tables as
DataFrames through a read-only DuckDB I/O manager (partition-aligned through the siro
assets' `partition_expr`), and is refreshed by declarative automation when the siro
sensor re-materializes one of its days, also for weeks older than the latest.
"""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pandas as pd
import pytest
from dagster import (
    AssetKey,
    AutomationCondition,
    DagsterInstance,
    DagsterResourceFunctionError,
    Definitions,
    build_defs_for_component,
    MaterializeResult,
    RunRequest,
    asset,
    evaluate_automation_conditions,
    materialize,
)

from examples.weekly_rep_scorecard.assets import weekly_partitions, weekly_rep_scorecard
from examples.weekly_rep_scorecard.definitions import consumer_definitions
from examples.weekly_rep_scorecard.scorecard import NO_USER, build_scorecard, scorecard_relation
from siro_assets import SiroComponent
from siro_assets.pipeline.pandas_reader import SiroWarehouseReader
from siro_assets.pipeline.automation.dagster_gaps import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from tests.integration.test_sensor import days_of, execute, find_late_link, tick
from tests.support import simulated_siro

SCORECARD = AssetKey(["rep_scorecards", "weekly_rep_scorecard"])
PLAIN_EAGER_TWIN = AssetKey(["rep_scorecards", "plain_eager_twin"])
RECORDING_CRM = AssetKey(["siro", "recording_crm"])
EXTRACTIONS = AssetKey(["siro", "recording_entity_extractions"])


@asset(
    key=PLAIN_EAGER_TWIN,
    deps=[RECORDING_CRM, EXTRACTIONS],
    partitions_def=weekly_partitions,
    automation_condition=AutomationCondition.eager(),
)
def plain_eager_twin() -> MaterializeResult:
    """The same dependencies with plain `eager()`: shows the latest-window caveat is real."""
    return MaterializeResult()


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _materialize_days(first: date, last: date, siro, warehouse, instance) -> None:
    tags = {PARTITION_RANGE_START_TAG: first.isoformat(), PARTITION_RANGE_END_TAG: last.isoformat()}
    execute(RunRequest(tags=tags), siro, warehouse, instance=instance)


@pytest.fixture
def merged(tmp_path, warehouse) -> Definitions:
    """What a user's module does: the Siro component's Definitions merged with its own."""
    siro = SiroComponent.resolve_from_dict({"warehouse": {"path": warehouse.database}})
    return Definitions.merge(
        build_defs_for_component(siro),
        consumer_definitions(str(tmp_path / "consumer_warehouse.duckdb")),
        Definitions(assets=[plain_eager_twin]),
    )


def test_merged_definitions_keep_the_project_job_to_siro_assets(merged):
    """The project's job selects `siro/recordings` downstream; merged with a consumer it
    must still resolve (one partitions definition) and leave the consumer's asset out."""
    job = merged.resolve_job_def("siro_recordings_job")
    keys = job.asset_layer.executable_asset_keys
    assert SCORECARD not in keys and PLAIN_EAGER_TWIN not in keys
    assert RECORDING_CRM in keys and EXTRACTIONS in keys
    merged.get_repository_def().load_all_definitions()  # every job, schedule and sensor


def _materialize_consumers(merged: Definitions, week: str, instance, keys=(SCORECARD,)):
    upstream = [merged.resolve_assets_def(key) for key in (RECORDING_CRM, EXTRACTIONS)]
    result = materialize(
        [*upstream, weekly_rep_scorecard, plain_eager_twin],
        selection=list(keys),
        partition_key=week,
        instance=instance,
        # The siro assets come resolved, with the project's resources bound; the consumer's
        # two resources are the ones to add.
        resources={key: merged.resources[key] for key in ("siro_pandas_reader", "scorecard_io_manager")},
    )
    assert result.success
    return result


def _stored_scorecard(merged: Definitions, week: str) -> pd.DataFrame:
    with duckdb.connect(merged.resources["scorecard_io_manager"].database, read_only=True) as con:
        return con.sql(
            "SELECT * EXCLUDE (week_start) FROM rep_scorecards.weekly_rep_scorecard "
            "WHERE week_start = $week ORDER BY crm_user", params={"week": week}
        ).df()


def _sql_scorecard(warehouse, week: date) -> pd.DataFrame:
    with warehouse.read_connection() as con:
        return scorecard_relation(con, week, week + timedelta(days=6)).df()


def test_scorecard_receives_exactly_its_weeks_rows_read_only(merged, warehouse):
    week = date(2026, 3, 2)  # a Monday; the days around it are loaded too
    with DagsterInstance.ephemeral() as instance:
        _materialize_days(week - timedelta(days=1), week + timedelta(days=7), simulated_siro(), warehouse, instance)
        result = _materialize_consumers(merged, week.isoformat(), instance)

    (materialization,) = result.asset_materializations_for_node("rep_scorecards__weekly_rep_scorecard")
    metadata = {k: v.value for k, v in materialization.metadata.items()}
    with warehouse.read_connection() as con:
        in_week, around = con.execute(
            "SELECT count(*) FILTER (WHERE partition_date BETWEEN $1 AND $1 + 6), count(*) "
            "FROM siro.recording_crm", [week]
        ).fetchone()
    assert around > in_week > 0  # rows outside the week exist, and were not delivered
    assert metadata["input_recordings"] == in_week
    assert metadata["first_input_day"] == week.isoformat()
    assert metadata["last_input_day"] == (week + timedelta(days=6)).isoformat()

    stored = _stored_scorecard(merged, week.isoformat())
    # The pandas route (the asset) and the DuckDB SQL route agree.
    expected = _sql_scorecard(warehouse, week)
    pd.testing.assert_frame_equal(
        stored.reset_index(drop=True), expected.reset_index(drop=True), check_dtype=False
    )
    assert stored["recordings"].sum() >= in_week  # a recording counts once per CRM user


def test_reader_refuses_to_write_the_warehouse(warehouse, tmp_path):
    @asset(key=AssetKey(["siro", "not_allowed"]), io_manager_key="siro_pandas_reader")
    def not_allowed() -> pd.DataFrame:
        return pd.DataFrame({"a": [1]})

    with pytest.raises(TypeError, match="only reads the siro warehouse"):
        materialize([not_allowed], resources={"siro_pandas_reader": SiroWarehouseReader(database=warehouse.database)})
    with pytest.raises(DagsterResourceFunctionError) as refused:
        materialize([not_allowed], resources={"siro_pandas_reader": SiroWarehouseReader(
            database=warehouse.database, connection_config={"access_mode": "READ_WRITE"})})
    assert "READ_ONLY" in str(refused.value.__cause__)


def test_sensor_refresh_of_an_old_day_rematerializes_its_week(merged, warehouse, tmp_path):
    rid, created, linked = find_late_link()
    week = _monday(created.date())
    before_link = simulated_siro(linked - timedelta(minutes=1))
    with DagsterInstance.ephemeral() as instance:
        # The whole week was loaded before the link existed; the scorecards were built.
        _materialize_days(week, week + timedelta(days=6), before_link, warehouse, instance)
        _materialize_consumers(merged, week.isoformat(), instance, keys=(SCORECARD, PLAIN_EAGER_TWIN))
        old = _stored_scorecard(merged, week.isoformat())
        first = evaluate_automation_conditions(defs=merged, instance=instance)
        assert first.get_requested_partitions(SCORECARD) == set()

        # The siro sensor sees the link and its run refreshes the recording's day.
        cursor = tick(before_link, None, tmp_path).cursor
        after_link = simulated_siro(linked + timedelta(seconds=30))
        (request,) = [rr for rr in tick(after_link, cursor, tmp_path).run_requests
                      if created.date().isoformat() in days_of(rr)]
        execute(request, after_link, warehouse, instance=instance)

        second = evaluate_automation_conditions(defs=merged, instance=instance, cursor=first.cursor)
        assert week.isoformat() in weekly_partitions.get_partition_keys()[:-1]  # not the latest week
        assert second.get_requested_partitions(SCORECARD) == {week.isoformat()}
        # Plain eager() only ever looks at the latest week: it would have missed this one.
        assert second.get_requested_partitions(PLAIN_EAGER_TWIN) == set()

        _materialize_consumers(merged, week.isoformat(), instance)
    new = _stored_scorecard(merged, week.isoformat())
    pd.testing.assert_frame_equal(new, _sql_scorecard(warehouse, week), check_dtype=False)
    # The newly linked recording (and any other change of that day) left the no-user
    # bucket for its rep(s).
    unassigned = lambda frame: int(frame.loc[frame.crm_user == NO_USER, "recordings"].sum())  # noqa: E731
    assert unassigned(new) < unassigned(old)
    with warehouse.read_connection() as con:
        (reps,) = con.execute(
            "SELECT user_external_ids FROM siro.recording_crm WHERE recording_id = ?", [rid]
        ).fetchone()
    assert reps and set(reps) <= set(new.crm_user)


def test_build_scorecard_counts_each_extraction_once_per_recording():
    crm = pd.DataFrame({
        "recording_id": ["r1", "r2", "r3"],
        "user_external_ids": [["u1"], ["u1", "u2"], []],
        "opportunity_external_id": ["o1", None, None],
    })
    extractions = pd.DataFrame({
        "recording_id": ["r1", "r1", "r2", "r3"],
        "position": [0, 0, 0, 0],  # r1's extraction has two CRM mappings: two rows
        "name": ["budget", "budget", "budget", "budget"],
        "value_text": ["10k", "10k", "10k", "5k"],
    })
    card = build_scorecard(crm, extractions).set_index("crm_user")
    assert card.loc["u1", "recordings"] == 2
    assert card.loc["u1", "opportunity_linked_share"] == 0.5
    assert card.loc["u1", "top_extracted_values"] == "budget=10k (2)"
    assert card.loc["u2", "top_extracted_values"] == "budget=10k (1)"
    assert card.loc[NO_USER, "recordings"] == 1
    assert card.loc[NO_USER, "top_extracted_values"] == "budget=5k (1)"
