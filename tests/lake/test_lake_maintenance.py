"""The lake's maintenance job: after partition replaces it compacts and expires snapshots,
the files on disk drop, and reads are unchanged. A DuckDB file gets no such job."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg

from siro_assets import SiroComponent
from siro_assets.warehouse.backend import open_warehouse
from siro_assets.warehouse.lake import LakeSettings

from .support import day_records, snapshot, stage, swap_and_rebuild

DAYS = [date(2026, 3, 2)]


def _parquet_files(data_path: Path) -> int:
    return sum(1 for _ in data_path.rglob("*.parquet"))


def _replace_days_repeatedly(lake: LakeSettings, scratch: Path) -> None:
    con = open_warehouse(lake=lake)
    for version in (1, 2, 1):  # every pass replaces the day: new files, old ones dropped
        st = stage(scratch, day_records(DAYS, version=version), DAYS)
        swap_and_rebuild(con, st, DAYS)
        st.close()
    con.close()


def _lake_component(lake: LakeSettings, tmp_path: Path, **maintenance) -> SiroComponent:
    return SiroComponent.resolve_from_dict({
        "api": {"simulator": {"enabled": True}},
        "warehouse": {"backend": "ducklake", "path": str(tmp_path / "stages" / "w.duckdb"),
                      "data_path": lake.data_path, "maintenance": maintenance},
    })


def test_maintenance_job_compacts_expires_and_reads_stay_equal(catalog_dsn, tmp_path, monkeypatch):
    lake = LakeSettings(catalog=catalog_dsn, data_path=str(tmp_path / "lake_data"), scratch_directory=str(tmp_path))
    _replace_days_repeatedly(lake, tmp_path)
    with open_warehouse(lake=lake, read_only=True) as con:
        before = snapshot(con)
    files_before = _parquet_files(Path(lake.data_path))

    monkeypatch.setenv("SIRO_DUCKLAKE_CATALOG", catalog_dsn)
    defs = dg.build_defs_for_component(_lake_component(lake, tmp_path, snapshot_retention_days=0))
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("siro_lake_maintenance_job").execute_in_process(instance=instance)
    assert result.success
    (materialized,) = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    report = {k: v.value for k, v in materialized.step_output_data.metadata.items()}

    files_after = _parquet_files(Path(lake.data_path))
    assert files_after < files_before
    # Every snapshot but the current one expired: what is left on disk is what it reads.
    assert files_after == report["data_files_after"] + report["delete_files_after"]
    assert report["files_deleted"] >= files_before - files_after
    assert report["snapshots_expired"] > 0 and report["snapshots_after"] == 1
    assert report["data_files_after"] < report["data_files_before"]  # the guard's many small files merged
    with open_warehouse(lake=lake, read_only=True) as con:
        assert snapshot(con) == before


def test_kept_snapshots_stay_readable_after_compaction(catalog_dsn, tmp_path):
    from siro_assets.warehouse.lake_maintenance import maintain_lake

    lake = LakeSettings(catalog=catalog_dsn, data_path=str(tmp_path / "lake_data"), scratch_directory=str(tmp_path))
    _replace_days_repeatedly(lake, tmp_path)
    with open_warehouse(lake=lake) as con:
        first_version = con.execute(
            "SELECT min(snapshot_id) FROM ducklake_snapshots('warehouse') WHERE changes['tables_inserted_into'] IS NOT NULL"
        ).fetchone()[0]
        old = con.execute(f"SELECT count(*), max(title) FROM siro.recordings AT (VERSION => {first_version})").fetchone()
        report = maintain_lake(con)  # the default retention: a week, so nothing here expires
        # The guard's small files were merged, but the replaced files wait out the week.
        assert report.files_merged > 0
        assert report.snapshots_expired == 0 and report.files_deleted == 0
        assert con.execute(
            f"SELECT count(*), max(title) FROM siro.recordings AT (VERSION => {first_version})"
        ).fetchone() == old


def test_only_a_lake_gets_the_maintenance_schedule_on_by_default(tmp_path):
    lake = LakeSettings(catalog="host=unused", data_path=str(tmp_path / "lake_data"))
    on_lake = dg.build_defs_for_component(_lake_component(lake, tmp_path))
    schedule = on_lake.resolve_schedule_def("lake_maintenance_schedule")
    assert schedule.cron_schedule == "45 3 * * *" and schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert "7 day(s)" in schedule.description

    on_file = dg.build_defs_for_component(
        SiroComponent.resolve_from_dict({"warehouse": {"path": str(tmp_path / "w.duckdb")}})
    )
    names = {s.name for s in on_file.schedules}
    assert "lake_maintenance_schedule" not in names and names  # the file's own schedules are there
