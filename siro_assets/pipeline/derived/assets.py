"""Every table derived from `siro/recordings`, one asset per `transforms.DERIVED_TABLES` entry.

Each derived table is rebuilt from `siro/recordings` for the same daily partitions
(identity mapping, the default between assets with the same `partitions_def`), in one
run for any range of days, inside the `siro_duckdb` pool that serialises DuckDB writers.
The table's own description (in `transforms/`) is the asset's description, so the UI and
the SQL's documentation cannot drift apart.
"""

import time

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    BackfillPolicy,
    MaterializeResult,
    asset,
)

from ...transforms import (
    CRM_WRITEBACK_PLAN,
    DERIVED_TABLES,
    RECORDING_CRM,
    RECORDING_CRM_LINKS,
    RECORDING_DAILY_STATS,
    RECORDING_ENTITY_EXTRACTIONS,
    RECORDING_SUMMARIES,
    DerivedTable,
    rebuild_partitions,
)
from ..catalog import DERIVED_KINDS, column_lineage, derived_table_schema, table_metadata
from ..partitions import dates_in_range, partition_key
from ..resources import WarehouseResource
from ..settings import PipelineSettings

# The UI's groups tell the story: the CRM view, the conversation view, the writebacks
# (roles; `PipelineSettings.group` names each instance's group).
GROUP_ROLES: dict[str, str] = {
    RECORDING_CRM_LINKS.name: "crm",
    RECORDING_CRM.name: "crm",
    RECORDING_SUMMARIES.name: "conversations",
    RECORDING_ENTITY_EXTRACTIONS.name: "conversations",
    RECORDING_DAILY_STATS.name: "conversations",
    CRM_WRITEBACK_PLAN.name: "writebacks",
}

# Per-day numbers the UI plots (Dagster charts numeric metadata over time).
PLOTTED_COLUMNS: dict[str, tuple[str, ...]] = {
    RECORDING_DAILY_STATS.name: (
        "recordings", "deleted", "purged", "linked_share", "summarised_share",
        "extraction_count", "mean_duration_ms",
    ),
}


def asset_key(table: DerivedTable, settings: PipelineSettings) -> AssetKey:
    """The asset key of a derived table: `<key_prefix>/<table name>`."""
    return settings.key(table.name)


def _plotted_metadata(warehouse: WarehouseResource, table: DerivedTable, days: list) -> dict:
    names = PLOTTED_COLUMNS.get(table.name)
    # One result's metadata is stamped on every partition of a ranged run, so per-day
    # numbers are only meaningful for a one-day run.
    if not names or len(days) != 1:
        return {}
    with warehouse.read_connection() as con:
        row = con.execute(
            f"SELECT {', '.join(names)} FROM {table.name} WHERE partition_date = ?", [days[0]]
        ).fetchone()
    return {name: value for name, value in zip(names, row or (None,) * len(names), strict=True) if value is not None}


def materialize_derived(
    context: AssetExecutionContext, warehouse: WarehouseResource, table: DerivedTable
) -> MaterializeResult:
    """Rebuild the run's partition range of `table` from the raw table (`recordings` of the
    warehouse's schema), in one transaction."""
    started = time.monotonic()
    days = dates_in_range(context.partition_key_range)
    with warehouse.get_connection() as con:
        rows = rebuild_partitions(con, table, days)
        table_rows = con.execute(f"SELECT count(*) FROM {table.name}").fetchone()[0]
    first, last = partition_key(days[0]), partition_key(days[-1])
    context.log.info(f"Rebuilt {table.in_schema(warehouse.table_schema)} for {first}..{last}: {rows} row(s)")
    return MaterializeResult(
        metadata={
            # Like siro/recordings: the rows of the partitions this run rebuilt.
            "dagster/row_count": rows,
            "dagster/column_schema": derived_table_schema(table),
            "dagster/table_name": table.in_schema(warehouse.table_schema),
            "table_rows": table_rows,
            "partitions": len(days),
            "partition_range": f"{first}...{last}",
            "duration_seconds": round(time.monotonic() - started, 3),
            **_plotted_metadata(warehouse, table, days),
        }
    )


def build_derived_asset(table: DerivedTable, settings: PipelineSettings) -> AssetsDefinition:
    """The asset that rebuilds `table`; its description is the table's description."""
    warehouse_key = settings.warehouse_resource_key

    @asset(
        key=asset_key(table, settings),
        description=table.description,
        deps=[settings.key("recordings")],
        partitions_def=settings.partitions_def,
        backfill_policy=BackfillPolicy.single_run(),
        pool=settings.warehouse_pool,
        group_name=settings.group(GROUP_ROLES[table.name]),
        owners=list(settings.owners),
        tags=dict(settings.tags),
        kinds=DERIVED_KINDS,
        # Changes with the table's SQL, so the UI marks partitions built by older SQL stale.
        code_version=table.fingerprint(),
        metadata={
            **table_metadata(table.in_schema(settings.table_schema), derived_table_schema(table)),
            "dagster/column_lineage": column_lineage(table, settings.key("recordings")),
        },
        required_resource_keys={warehouse_key},
    )
    def _derived(context: AssetExecutionContext) -> MaterializeResult:
        return materialize_derived(context, getattr(context.resources, warehouse_key), table)

    return _derived


def build_derived_assets(settings: PipelineSettings) -> list[AssetsDefinition]:
    """One asset per derived table, for one instance."""
    return [build_derived_asset(table, settings) for table in DERIVED_TABLES]
