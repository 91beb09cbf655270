"""Checks that protect and stay cheap (issue 8, item 8).

Blocking raw-table checks stop derived tables from building; checks run in the
warehouse pool and look only at the run's days; the whole-table audit is its own job;
client and warehouse warnings reach the run's event log.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from dagster import DagsterEventType, DagsterInstance, Definitions, build_asset_check_context, materialize

from siro_assets.pipeline import checks
from siro_assets.pipeline.checks import run_scope
from siro_assets.pipeline.ingest import recordings as raw
from siro_assets.pipeline.resources import WAREHOUSE_POOL
from siro_assets.warehouse.connection import duckdb_connection
from tests.default_instance import RECORDINGS_KEY, asset_checks, derived_assets, raw_asset_checks, recordings, warehouse_audit_job
from tests.support import partition_range_tags, simulated_siro

ROOT = Path(__file__).resolve().parents[2]
DAY = "2026-03-02"


def _resources(warehouse, **siro_overrides):
    return {"siro_api": simulated_siro(**siro_overrides), "siro_warehouse": warehouse}


def test_raw_key_checks_block_and_every_check_runs_in_the_warehouse_pool():
    blocking = {spec.name for check in raw_asset_checks for spec in check.check_specs if spec.blocking}
    assert blocking == {"id_unique", "keys_not_null"}
    assert all(check.op.pool == WAREHOUSE_POOL for check in asset_checks)


def test_a_broken_raw_table_stops_the_derived_tables_in_a_real_run(warehouse, monkeypatch):
    real_swap = raw.swap_partitions

    def swap_then_duplicate(con, stage, days, *args, **kwargs):
        # A writer bug: the swap leaves one recording twice in the day.
        inserted = real_swap(con, stage, days, *args, **kwargs)
        con.execute("INSERT INTO siro.recordings SELECT * FROM siro.recordings LIMIT 1")
        return inserted

    monkeypatch.setattr(raw, "swap_partitions", swap_then_duplicate)
    result = materialize(
        [recordings, *derived_assets, *asset_checks], resources=_resources(warehouse),
        partition_key=DAY, raise_on_error=False,
    )
    assert not result.success
    outcomes = {e.check_name: e.passed for e in result.get_asset_check_evaluations()
                if e.asset_key == RECORDINGS_KEY}
    assert outcomes["id_unique"] is False
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert materialized == {RECORDINGS_KEY}
    # Dagster never starts them: "Dependencies ... failed: ['siro__recordings_id_unique']".
    started = {e.step_key for e in result.all_events if e.event_type == DagsterEventType.STEP_START}
    assert "siro__recordings_id_unique" in started
    assert not {f"siro__{a.key.path[-1]}" for a in derived_assets} & started
    with duckdb_connection(warehouse.database, read_only=True) as con:
        tables = {t for (t,) in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'siro'").fetchall()}
    assert tables == {"recordings"}


def test_checks_look_at_the_runs_days_and_the_audit_job_at_the_whole_table(warehouse):
    first = materialize([recordings, *derived_assets], resources=_resources(warehouse),
                        tags=partition_range_tags("2026-03-01", "2026-03-02"))
    assert first.success
    with duckdb_connection(warehouse.database) as con:
        # Old history that is broken: a duplicated id on 2026-03-01.
        con.execute("INSERT INTO siro.recordings SELECT * FROM siro.recordings "
                    "WHERE partition_date = DATE '2026-03-01' LIMIT 1")

    run = materialize([recordings, *derived_assets, *asset_checks], resources=_resources(warehouse),
                      partition_key="2026-03-03")
    assert run.success  # the run's own day is sound; the broken old day is not its business
    evaluations = run.get_asset_check_evaluations()
    assert evaluations and all(e.passed for e in evaluations)
    assert {e.metadata["scope"].value for e in evaluations} == {"2026-03-03...2026-03-03"}

    defs = Definitions(assets=[recordings, *derived_assets], asset_checks=asset_checks,
                       jobs=[warehouse_audit_job], resources=_resources(warehouse))
    audit = defs.resolve_job_def("siro_warehouse_audit_job").execute_in_process(raise_on_error=False)
    outcome = {(e.asset_key.path[-1], e.check_name): e for e in audit.get_asset_check_evaluations()}
    assert len(outcome) == len(asset_checks)
    duplicate = outcome[("recordings", "id_unique")]
    assert not duplicate.passed and duplicate.metadata["scope"].value == "whole table"
    assert duplicate.metadata["sample_partitions"].value == ["2026-03-01"]


def test_run_scope_reads_partition_and_range_tags():
    from datetime import date

    assert run_scope({}) is None
    assert run_scope({"dagster/partition": DAY}) == (date(2026, 3, 2), date(2026, 3, 2))
    assert run_scope(partition_range_tags("2026-03-01", "2026-03-05")) == (date(2026, 3, 1), date(2026, 3, 5))
    assert checks.in_scope("r", None) == "TRUE"
    # Invoked alone (no run), a check looks at the whole table.
    assert run_scope(build_asset_check_context().op_execution_context.run_tags) is None


def test_a_429_retry_warning_shows_in_the_runs_event_log(warehouse, tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")  # the instance the README starts
    with DagsterInstance.from_config(str(home)) as instance:
        result = materialize([recordings], resources=_resources(warehouse, simulator_fault_script=["429"]),
                             partition_key=DAY, instance=instance)
        assert result.success
        warnings = [
            entry.user_message for entry in instance.all_logs(result.run_id)
            if entry.level >= 30 and "HTTP 429" in entry.user_message
        ]
    assert warnings, "the client's retry warning is not in the run's event log"
    assert "retrying" in warnings[0]
