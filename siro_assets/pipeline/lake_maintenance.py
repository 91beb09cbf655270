"""The lake's maintenance job and schedule: compaction and snapshot expiry (docs/OPERATIONS.md).

Only a DuckLake warehouse gets them (`warehouse.maintenance`, on by default there); a
DuckDB file rewrites its own blocks and needs neither.
"""

# No `from __future__ import annotations`: Dagster inspects the real annotation of `context`.

from datetime import timedelta

from dagster import (
    DefaultScheduleStatus,
    Definitions,
    Model,
    Nothing,
    OpExecutionContext,
    Out,
    Output,
    Resolvable,
    ScheduleDefinition,
    job,
    op,
)
from pydantic import Field, field_validator

from ..warehouse.lake_maintenance import DEFAULT_SNAPSHOT_RETENTION, maintain_lake
from .settings import PipelineSettings


class LakeMaintenanceOptions(Resolvable, Model):
    """Compaction and snapshot expiry of a lake (the `warehouse.maintenance:` attributes)."""

    enabled: bool = Field(default=True, description="Whether the schedule starts running when loaded (lake only).")
    cron: str = Field(default="45 3 * * *", description="Cron (UTC) of the maintenance run; after the nightly pull.")
    snapshot_retention_days: float = Field(
        default=DEFAULT_SNAPSHOT_RETENTION / timedelta(days=1),
        description="Snapshots younger than this are kept (time travel, readers); older ones and "
        "the files only they used are deleted.",
    )

    @field_validator("snapshot_retention_days")
    @classmethod
    def _not_negative(cls, value: float) -> float:
        if value < 0:
            raise ValueError(f"warehouse.maintenance.snapshot_retention_days must be >= 0, got {value}")
        return value

    @property
    def retention(self) -> timedelta:
        """The retention as a duration."""
        return timedelta(days=self.snapshot_retention_days)


def build_lake_maintenance(settings: PipelineSettings, options: LakeMaintenanceOptions) -> Definitions:
    """One instance's maintenance job (`<prefix>_lake_maintenance_job`) and its schedule."""
    warehouse_key = settings.warehouse_resource_key

    @op(
        name=settings.scoped("lake_maintenance"),
        required_resource_keys={warehouse_key},
        out=Out(Nothing),
        tags={"kind": "ducklake"},
    )
    def lake_maintenance(context: OpExecutionContext):
        """Rewrite files with deletes, merge small files, expire old snapshots, delete their files."""
        warehouse = getattr(context.resources, warehouse_key)
        with warehouse.get_connection() as con:
            report = maintain_lake(con, retention=options.retention)
        context.log.info(
            f"lake files {report.data_files_before} -> {report.data_files_after} "
            f"(delete files {report.delete_files_before} -> {report.delete_files_after}), "
            f"{report.snapshots_expired} snapshot(s) expired, {report.files_deleted} file(s) deleted"
        )
        yield Output(None, metadata=report.as_metadata())

    @job(name=f"{settings.key_prefix}_lake_maintenance_job", description="Compact the lake and expire old snapshots.")
    def lake_maintenance_job():
        lake_maintenance()

    schedule = ScheduleDefinition(
        name=settings.scoped("lake_maintenance_schedule"),
        job=lake_maintenance_job,
        cron_schedule=options.cron,
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.RUNNING if options.enabled else DefaultScheduleStatus.STOPPED,
        description=f"Compact the lake; keep {options.snapshot_retention_days:g} day(s) of snapshots.",
    )
    return Definitions(jobs=[lake_maintenance_job], schedules=[schedule])


__all__ = ["LakeMaintenanceOptions", "build_lake_maintenance"]
