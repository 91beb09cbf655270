"""`SiroComponent`: one Siro organization as Dagster definitions, configured in `defs.yaml`.

    type: siro_assets.SiroComponent
    attributes:
      key_prefix: siro                      # asset keys siro/recordings, siro/recording_crm, ...
      partitions_start: "2026-01-01"
      api: {base_url: ..., token_env: SIRO_API_TOKEN}
      warehouse: {path: data/siro.duckdb, schema: siro}  # or {backend: ducklake, data_path: s3://...}
      sensor: {enabled: true, interval_seconds: 60}
      schedule: {enabled: true, cron: "15 0 * * *"}
      writebacks: {routing_file: crm_connections.yaml, dry_run: false}

Every attribute has a default. Secrets are never attributes: `api.token_env` names the
variable, which each run and tick reads when it starts (an `EnvVar`), so a code server
started without the token still runs with the run's. Two instances with different
`key_prefix`es are two organizations: every asset key, resource key, job, sensor,
schedule and pool name derives from the prefix.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import dagster as dg
from pydantic import Field, field_validator, model_validator

from ..api_client import DEFAULT_BASE_URL
from ..api_client.pacing import DEFAULT_REQUESTS_PER_MINUTE
from ..pipeline.build import build_pipeline_definitions
from ..pipeline.lake_maintenance import LakeMaintenanceOptions, build_lake_maintenance
from ..pipeline.resources import SiroApiResource, WarehouseResource, default_duckdb_path, rate_budget_path
from ..pipeline.settings import (
    DEFAULT_KEY_PREFIX,
    DEFAULT_OWNERS,
    DEFAULT_PARTITIONS_START,
    PipelineSettings,
    ScheduleOptions,
    SensorOptions,
    WebhookOptions,
)
from ..pipeline.writebacks.resource import CrmWritebackResource
from ..warehouse.lake import CATALOG_ENV_VAR, DUCKDB, DUCKLAKE
from ..warehouse.connection import DEFAULT_SCHEMA, checked_schema
from .scaffolder import SiroComponentScaffolder


def _blank_to_none(value: Any) -> Any:
    # `{{ env('X', '') }}` renders an unset variable as "": that means "not set".
    return None if isinstance(value, str) and not value.strip() else value


class SimulatorArgs(dg.Resolvable, dg.Model):
    """The built-in deterministic simulator instead of Siro's API (demo and tests)."""

    enabled: bool = Field(default=False, description="Use the simulator instead of Siro's API (no token needed).")
    seed: int = Field(default=7, description="Seed of the simulated world (same seed, same recordings).")
    recordings_per_day: int = Field(default=40, description="Simulated recordings per day.")
    page_size_cap: int = Field(default=100, description="Largest page the simulated server returns.")


class ApiArgs(dg.Resolvable, dg.Model):
    """Siro's recordings API."""

    base_url: str | None = Field(
        default=None,
        description=f"API base URL; unset: SIRO_API_BASE_URL when the run starts, else {DEFAULT_BASE_URL}.",
    )
    token_env: str = Field(
        default="SIRO_API_TOKEN",
        description="Name of the environment variable holding the organization's integration token; "
        "read when each run or tick starts, never stored.",
    )
    page_size: int = Field(default=1000, description="Records asked for per page (the server may cap it).")
    requests_per_minute: float = Field(
        default=DEFAULT_REQUESTS_PER_MINUTE, description="The token's budget (Siro allows 1,000/min)."
    )
    simulator: SimulatorArgs = Field(
        default_factory=SimulatorArgs, description="The built-in deterministic simulator (demo and tests)."
    )

    _blank = field_validator("base_url", mode="before")(classmethod(lambda cls, v: _blank_to_none(v)))


class WarehouseArgs(dg.Resolvable, dg.Model):
    """Where the tables live: a DuckDB file (one per organization) or a DuckLake."""

    backend: Literal["duckdb", "ducklake"] = Field(
        default=DUCKDB,
        description="`duckdb` (the file `path`) or `ducklake` (PostgreSQL catalog + `data_path`); "
        "a lake keeps only run stages beside `path`.",
    )
    path: str | None = Field(
        default=None,
        description="DuckDB file; unset: data/siro.duckdb (data/siro_simulator.duckdb on the simulator).",
    )
    catalog_env: str = Field(
        default=CATALOG_ENV_VAR,
        description="Name of the variable holding the lake catalog's libpq DSN; read when each run "
        "starts, never stored or logged (it holds a password).",
    )
    data_path: str | None = Field(
        default=None, description="The lake's data files: a directory or s3://bucket/prefix/ (AWS_* for S3)."
    )
    budget_dsn_env: str | None = Field(
        default=None,
        description="Lake mode: name of the variable holding the libpq DSN of the PostgreSQL database "
        "that keeps the token's request budget for every machine; unset: `catalog_env`'s.",
    )
    schema_: str = Field(
        default=DEFAULT_SCHEMA,
        alias="schema",
        description="SQL schema of the tables (a lower-case identifier); instances sharing one "
        "warehouse each need their own.",
    )
    maintenance: LakeMaintenanceOptions = Field(
        default_factory=LakeMaintenanceOptions,
        description="A lake's compaction and snapshot-expiry schedule (ducklake only; a file has none).",
    )

    _blank = field_validator("path", "data_path", mode="before")(classmethod(lambda cls, v: _blank_to_none(v)))

    @field_validator("backend", mode="before")
    @classmethod
    def _default_backend(cls, value: Any) -> Any:
        return _blank_to_none(value) or DUCKDB

    @model_validator(mode="after")
    def _lake_has_data_path(self) -> WarehouseArgs:
        if self.backend == DUCKLAKE and not self.data_path:
            raise ValueError("warehouse.backend ducklake needs warehouse.data_path")
        return self

    def resource(self, database: str) -> WarehouseResource:
        """The warehouse resource; a lake's catalog DSN is bound by variable name only."""
        if self.backend != DUCKLAKE:
            return WarehouseResource(database=database, table_schema=self.schema_)
        return WarehouseResource(
            database=database,
            table_schema=self.schema_,
            backend=DUCKLAKE,
            ducklake_catalog=dg.EnvVar(self.catalog_env),
            ducklake_data_path=self.data_path,
        )

    @field_validator("schema_")
    @classmethod
    def _schema_is_identifier(cls, value: str) -> str:
        return checked_schema(value)


class WritebacksArgs(dg.Resolvable, dg.Model):
    """Where extracted values are written back (docs/WRITEBACKS.md)."""

    routing_file: str | None = Field(
        default=None,
        description="YAML routing file by CRM connection id; unset: SIRO_CRM_CONNECTIONS or SIRO_CRM_SINK "
        "when the run starts (the outbox by default).",
    )
    dry_run: bool = Field(default=False, description="Send nothing; log what would be sent.")

    _blank = field_validator("routing_file", mode="before")(classmethod(lambda cls, v: _blank_to_none(v)))


@dg.scaffold_with(SiroComponentScaffolder)
class SiroComponent(dg.Component, dg.Model, dg.Resolvable):
    """Siro recordings as daily-partitioned DuckDB tables, derived CRM and conversation
    tables, CRM writebacks, a nightly schedule and an `updatedAt` sensor, for one Siro
    organization. Add one instance per organization, each with its own `key_prefix`.
    """

    key_prefix: str = Field(default=DEFAULT_KEY_PREFIX, description="First part of every asset key.")
    partitions_start: str = Field(default=DEFAULT_PARTITIONS_START, description="First daily partition (UTC).")
    api: ApiArgs = Field(default_factory=ApiArgs, description="Siro's recordings API (or the simulator).")
    warehouse: WarehouseArgs = Field(
        default_factory=WarehouseArgs, description="The instance's warehouse: a DuckDB file (default) or a DuckLake."
    )
    sensor: SensorOptions = Field(default_factory=SensorOptions, description="The `updatedAt` change sensor.")
    schedule: ScheduleOptions = Field(default_factory=ScheduleOptions, description="The nightly schedule.")
    webhooks: WebhookOptions = Field(
        default_factory=WebhookOptions, description="Siro's signed webhooks: the inbox sensor (docs/WEBHOOKS.md)."
    )
    writebacks: WritebacksArgs = Field(
        default_factory=WritebacksArgs, description="CRM writebacks of extracted values (docs/WRITEBACKS.md)."
    )
    group_names: dict[str, str] = Field(
        default_factory=dict,
        description="Group name by role (ingest, crm, conversations, writebacks); default <key_prefix>_<role>.",
    )
    owners: Sequence[str] = Field(default=DEFAULT_OWNERS, description="Owners of every asset.")
    tags: Mapping[str, str] = Field(default_factory=dict, description="Tags on every asset.")
    kinds: Sequence[str] = Field(default_factory=list, description="Extra kinds on every asset.")

    # -- what the instance is made of --------------------------------------------------
    def _polling_sensor_options(self) -> SensorOptions:
        # With webhooks on, polling only catches lost webhooks: it ticks every 600 s
        # unless `sensor.interval_seconds` is set explicitly.
        if self.webhooks.enabled and "interval_seconds" not in self.sensor.model_fields_set:
            return self.sensor.model_copy(update={"interval_seconds": 600})
        return self.sensor

    def pipeline_settings(self) -> PipelineSettings:
        """The names and options every factory in `siro_assets.pipeline` takes."""
        return PipelineSettings(
            key_prefix=self.key_prefix,
            partitions_start=self.partitions_start,
            sensor=self._polling_sensor_options(),
            schedule=self.schedule,
            webhooks=self.webhooks,
            page_size=self.api.page_size,
            owners=tuple(self.owners),
            tags=tuple(sorted(self.tags.items())),
            group_names=tuple(sorted(self.group_names.items())),
            table_schema=self.warehouse.schema_,
        )

    def warehouse_path(self) -> str:
        """The instance's DuckDB file (the webhook receiver and scripts find it here too)."""
        return self.warehouse.path or default_duckdb_path(self.api.simulator.enabled)

    def api_resource(self) -> SiroApiResource:
        """The Siro API resource: the simulator's class only when `api.simulator.enabled`,
        so a production instance never imports the simulator."""
        common = dict(
            base_url=self.api.base_url,
            page_size=self.api.page_size,
            requests_per_minute=self.api.requests_per_minute,
        )
        if self.api.simulator.enabled:
            from ..simulator.resource import SimulatedSiroApiResource

            sim = self.api.simulator
            return SimulatedSiroApiResource(
                **common,
                simulator_seed=sim.seed,
                simulator_recordings_per_day=sim.recordings_per_day,
                simulator_start_date=self.partitions_start,
                simulator_page_size_cap=sim.page_size_cap,
            )
        if self.warehouse.backend == DUCKLAKE:
            # Pods on several machines: the budget lives in PostgreSQL, not in a local file.
            budget = dg.EnvVar(self.warehouse.budget_dsn_env or self.warehouse.catalog_env)
            return SiroApiResource(**common, token=dg.EnvVar(self.api.token_env), rate_budget_dsn=budget)
        return SiroApiResource(
            **common,
            token=dg.EnvVar(self.api.token_env),
            rate_budget_file=str(rate_budget_path(self.warehouse_path())),
        )

    def resources(self) -> dict[str, Any]:
        """The instance's resources under its own keys (`<key_prefix>_api`, ...), so they
        never collide with a project's `warehouse` or `crm`, nor with another instance."""
        settings = self.pipeline_settings()
        resources: dict[str, Any] = {
            settings.api_resource_key: self.api_resource(),
            settings.warehouse_resource_key: self.warehouse.resource(self.warehouse_path()),
            settings.crm_resource_key: CrmWritebackResource(
                connections_file=self.writebacks.routing_file, dry_run=self.writebacks.dry_run
            ),
        }
        reader = _pandas_reader(self.warehouse, self.warehouse_path(), settings.table_schema)
        if reader is not None:
            resources[settings.reader_io_manager_key] = reader
        return resources

    # -- the translation hook ------------------------------------------------------------
    def get_asset_spec(self, spec: dg.AssetSpec) -> dg.AssetSpec:
        """Each asset's spec after the instance's `kinds`; override in a subclass to
        change owners, tags, kinds, groups or metadata (keys come from `key_prefix`)."""
        return spec.merge_attributes(kinds=set(self.kinds)) if self.kinds else spec

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        """Assets, checks, jobs, the sensor, the schedules and the resources of this instance."""
        defs = build_pipeline_definitions(self.pipeline_settings(), self.resources())
        if self.warehouse.backend == DUCKLAKE:
            defs = dg.Definitions.merge(defs, build_lake_maintenance(self.pipeline_settings(), self.warehouse.maintenance))
        return defs.map_asset_specs(func=self.get_asset_spec)


def _pandas_reader(warehouse: WarehouseArgs, database: str, schema: str):
    """The read-only pandas input manager of the instance's warehouse (file or lake) and
    schema, when the `pandas` extra is installed."""
    if importlib.util.find_spec("pandas") is None:
        return None
    from ..pipeline.pandas_reader import SiroWarehouseReader

    if warehouse.backend != DUCKLAKE:
        return SiroWarehouseReader(database=database, schema=schema)
    return SiroWarehouseReader(
        database=database, schema=schema, backend=DUCKLAKE,
        ducklake_catalog=dg.EnvVar(warehouse.catalog_env), ducklake_data_path=warehouse.data_path,
    )
