"""`PipelineSettings`: everything one Siro organization's definitions are built from.

The component (`siro_assets.component`) resolves its YAML attributes into one of these;
every factory in `pipeline/` takes it, so nothing here reads the environment when a
module is imported, and two instances (two organizations) can live in one process.
Names that must be unique in a code location (resource keys, jobs, sensors, schedules,
pools) derive from `key_prefix`; the default prefix `siro` keeps today's names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import Any, Literal

from dagster import AssetKey, DailyPartitionsDefinition, Model, Resolvable
from pydantic import Field, field_validator, model_validator

from ..changes.tick_clock import SYSTEM_CLOCK, TickClock
from ..warehouse.connection import DEFAULT_SCHEMA, checked_schema

DEFAULT_KEY_PREFIX = "siro"
DEFAULT_PARTITIONS_START = "2026-01-01"
DEFAULT_OWNERS = ("team:revenue-data",)
PARTITION_KEY_FORMAT = "%Y-%m-%d"


class WebhookOptions(Resolvable, Model):
    """The webhook sensor (the component's `webhooks:` attributes): whether it runs, the
    environment variable holding the signing secret (the receiver's, never logged), and
    how often it drains the inbox."""

    enabled: bool = Field(default=False, description="Run the inbox sensor; polling then defaults to 600 s.")
    secret_env: str | None = Field(
        default=None,
        description="Variable holding the receiver's signing secret (whsec_...); the receiver reads it. "
        "Default from key_prefix: siro -> SIRO_WEBHOOK_SECRET, west -> SIRO_WEST_WEBHOOK_SECRET."
    )
    interval_seconds: int = Field(
        default=1,
        description="Minimum seconds between inbox ticks (an empty inbox costs nothing). The daemon "
        "evaluates sensors once per loop of about 5 s, so 1 means every loop: a 5 would skip "
        "every other loop whenever a tick started a moment late.",
    )
    inbox_path: str | None = Field(default=None, description="The inbox file; default beside the warehouse.")
    inbox_dsn_env: str | None = Field(
        default=None,
        description="Variable holding a PostgreSQL libpq DSN: the inbox is then a table in that database "
        "instead of the SQLite file (receiver and sensor read the variable; never logged).",
    )
    max_ids_per_run: int = Field(default=200, description="Recording ids per run; the rest go to the next tick's run.")
    max_waiting_runs: int = Field(
        default=1,
        ge=1,
        description="Webhook runs that may wait to start at once; past it, new ids wait for the next tick "
        "and go out together, so a stream of events is not one run process per tick.",
    )

    checks: Literal["essential", "all"] = Field(
        default="essential",
        description="Which asset checks a webhook run executes. `essential`: the raw table's blocking "
        "checks (derived tables never build from duplicates or rows without keys) and the writeback "
        "check (a failed CRM write shows at once); the rest run with the polling, nightly and audit "
        "runs. `all`: every check, at ~1 s of the warehouse pool each, which at a steady stream of "
        "events makes runs queue behind one another (docs/WEBHOOKS.md).",
    )

    @field_validator("inbox_path", "inbox_dsn_env", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        # `{{ env('X', '') }}` renders an unset variable as "": that means "not set".
        return None if isinstance(value, str) and not value.strip() else value


class SensorOptions(Resolvable, Model):
    """The `updatedAt` sensor (the component's `sensor:` attributes): whether it starts
    running, how often it ticks, and how far below its watermark it re-lists (for changes
    that become visible late)."""

    enabled: bool = Field(default=True, description="Whether the sensor starts running when loaded.")
    interval_seconds: int = Field(default=60, description="Seconds between ticks (>= 1).")
    lookback_seconds: int = Field(
        default=300, description="How far below its `updatedAt` watermark each tick re-lists (late changes)."
    )
    max_runs_per_tick: int = Field(
        default=10, description="Changed days are merged into at most this many partition-range runs per tick."
    )
    tick_seconds: int = Field(
        default=30, description="No page request starts after this many seconds of a tick (<= 40; Dagster stops at 60)."
    )
    max_pages_per_tick: int = Field(default=300, description="At most this many API pages listed per tick.")

    @model_validator(mode="after")
    def _in_range(self) -> SensorOptions:
        for name in ("interval_seconds", "max_runs_per_tick", "tick_seconds", "max_pages_per_tick"):
            if getattr(self, name) < 1:
                raise ValueError(f"sensor.{name} must be >= 1, got {getattr(self, name)}")
        if self.lookback_seconds < 0:
            raise ValueError(f"sensor.lookback_seconds must be >= 0, got {self.lookback_seconds}")
        if self.tick_seconds > 40:
            raise ValueError(
                f"sensor.tick_seconds must be <= 40 (Dagster stops a tick at 60 s), got {self.tick_seconds}"
            )
        return self


class ScheduleOptions(Resolvable, Model):
    """The nightly schedule that pulls yesterday's complete day (the `schedule:` attributes)."""

    enabled: bool = Field(default=True, description="Whether the schedule starts running when loaded.")
    cron: str = Field(default="15 0 * * *", description="Cron (UTC) of the run that pulls yesterday's day.")


@dataclass(frozen=True)
class PipelineSettings:
    """One instance's names and options; see the module docstring."""

    key_prefix: str = DEFAULT_KEY_PREFIX
    partitions_start: str = DEFAULT_PARTITIONS_START
    sensor: SensorOptions = field(default_factory=SensorOptions)
    schedule: ScheduleOptions = field(default_factory=ScheduleOptions)
    webhooks: WebhookOptions = field(default_factory=WebhookOptions)
    # The API's maximum page size is undocumented and servers cap silently, so ask for
    # a lot: an idle tick is one request, a busy one as few as the server allows.
    page_size: int = 1000
    owners: tuple[str, ...] = DEFAULT_OWNERS
    tags: tuple[tuple[str, str], ...] = ()
    # Group names by role; unset roles get `<key_prefix>_<role>`.
    group_names: tuple[tuple[str, str], ...] = ()
    # The SQL schema of the instance's tables (`warehouse.schema`); every warehouse
    # connection of the instance makes it the default schema.
    table_schema: str = DEFAULT_SCHEMA
    # The sensor tick's clocks (not a YAML attribute): tests and compressed-time runs
    # pass their own; two settings differing only in clock are the same instance.
    clock: TickClock = field(default=SYSTEM_CLOCK, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.key_prefix.isidentifier():
            raise ValueError(f"key_prefix must be a Python-identifier-like name such as siro_west, got {self.key_prefix!r}")
        checked_schema(self.table_schema)
        try:
            date.fromisoformat(self.partitions_start)
        except ValueError:
            raise ValueError(
                f"partitions_start must be a date like 2026-01-01, got {self.partitions_start!r}"
            ) from None

    # -- names unique per instance -------------------------------------------------
    @property
    def webhook_secret_env(self) -> str:
        """The variable holding this endpoint's signing secret: `webhooks.secret_env`, else
        from key_prefix (siro -> SIRO_WEBHOOK_SECRET, west -> SIRO_WEST_WEBHOOK_SECRET), the
        names the receiver's `--endpoint` examples use."""
        if self.webhooks.secret_env:
            return self.webhooks.secret_env
        prefix = self.key_prefix.upper()
        if prefix == "SIRO":
            return "SIRO_WEBHOOK_SECRET"
        return f"{prefix if prefix.startswith('SIRO_') else 'SIRO_' + prefix}_WEBHOOK_SECRET"

    def scoped(self, name: str) -> str:
        """`name` for this instance: unchanged for the default prefix (today's names),
        `<key_prefix>_<name>` for any other, so two instances never clash."""
        return name if self.key_prefix == DEFAULT_KEY_PREFIX else f"{self.key_prefix}_{name}"

    def key(self, name: str) -> AssetKey:
        """The asset key of table `name`: `<key_prefix>/<name>`."""
        return AssetKey([self.key_prefix, name])

    def group(self, role: str) -> str:
        """The group of the assets with `role` (ingest, crm, conversations, writebacks)."""
        return dict(self.group_names).get(role, f"{self.key_prefix}_{role}")

    @property
    def api_resource_key(self) -> str:
        return f"{self.key_prefix}_api"

    @property
    def warehouse_resource_key(self) -> str:
        return f"{self.key_prefix}_warehouse"

    @property
    def crm_resource_key(self) -> str:
        return f"{self.key_prefix}_crm"

    @property
    def reader_io_manager_key(self) -> str:
        """The read-only pandas input manager a consumer's `AssetIn` names."""
        return f"{self.key_prefix}_pandas_reader"

    @property
    def warehouse_pool(self) -> str:
        """Serialises derived rebuilds on this instance's warehouse (dagster.yaml: limit 1)."""
        return f"{self.key_prefix}_duckdb"

    @property
    def crm_pool(self) -> str:
        """Deliveries to this instance's CRMs, one at a time."""
        return f"{self.key_prefix}_crm"

    @property
    def recordings_job_name(self) -> str:
        return f"{self.key_prefix}_recordings_job"

    def table_name(self, name: str) -> str:
        """`<table_schema>.<name>`: table `name` as a reader outside the pipeline names it
        (the catalog's `dagster/table_name`, descriptions); the pipeline's SQL says `name`."""
        return f"{self.table_schema}.{name}"

    @cached_property
    def partitions_def(self) -> DailyPartitionsDefinition:
        """UTC days of `createdAt`; `end_offset=1` makes today's partial day a partition
        too, so the sensor re-pulls it as recordings get linked during the day."""
        return DailyPartitionsDefinition(
            start_date=self.partitions_start, timezone="UTC", end_offset=1, fmt=PARTITION_KEY_FORMAT
        )
