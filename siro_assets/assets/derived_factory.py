"""What the derived assets share: their decorator settings and their body.

Every derived table is rebuilt from `siro/recordings` for the same daily partitions
(identity mapping, the default between assets with the same `partitions_def`), in one
run for any range of days, inside the `siro_duckdb` pool that serialises DuckDB writers.
"""

from __future__ import annotations

from collections.abc import Callable

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    BackfillPolicy,
    MaterializeResult,
    TableColumn,
    TableColumnConstraints,
    TableSchema,
    asset,
)

from ..partitions import dates_in_range, daily_partitions, partition_key
from ..jobs import RECORDINGS_KEY
from ..resources import WAREHOUSE_POOL, WarehouseResource
from ..transforms import DerivedTable, rebuild_partitions
from ..warehouse.schema import SCHEMA



def asset_key(table: DerivedTable) -> AssetKey:
    """The asset key of a derived table: `siro/<table name>`."""
    return AssetKey([SCHEMA, table.name])


def table_schema(table: DerivedTable) -> TableSchema:
    """The table's columns as Dagster's TableSchema (shown as the asset's column schema)."""
    columns = []
    for column in table.columns:
        required = "NOT NULL" in column.sql_type
        columns.append(
            TableColumn(
                name=column.name,
                type=column.sql_type.replace(" NOT NULL", ""),
                description=column.description,
                constraints=TableColumnConstraints(nullable=not required),
            )
        )
    return TableSchema(columns=columns)


def derived_asset(table: DerivedTable) -> Callable[[Callable[..., MaterializeResult]], AssetsDefinition]:
    """`@asset` with the settings every derived table shares; the function's docstring is its UI description."""
    return asset(
        key=asset_key(table),
        deps=[RECORDINGS_KEY],
        partitions_def=daily_partitions,
        backfill_policy=BackfillPolicy.single_run(),
        pool=WAREHOUSE_POOL,
        group_name=SCHEMA,
        kinds={"duckdb"},
        metadata={
            "dagster/table_name": table.qualified_name,
            "dagster/column_schema": table_schema(table),
        },
    )


def materialize_derived(
    context: AssetExecutionContext, warehouse: WarehouseResource, table: DerivedTable
) -> MaterializeResult:
    """Rebuild the run's partition range of `table` from `siro.recordings`, in one transaction."""
    days = dates_in_range(context.partition_key_range)
    with warehouse.get_connection() as con:
        rows = rebuild_partitions(con, table, days)
        table_rows = con.execute(f"SELECT count(*) FROM {table.qualified_name}").fetchone()[0]
    first, last = partition_key(days[0]), partition_key(days[-1])
    context.log.info(f"Rebuilt {table.qualified_name} for {first}..{last}: {rows} row(s)")
    return MaterializeResult(
        metadata={
            # Like siro/recordings: the rows of the partitions this run rebuilt.
            "dagster/row_count": rows,
            "dagster/column_schema": table_schema(table),
            "dagster/table_name": table.qualified_name,
            "table_rows": table_rows,
            "partitions": len(days),
            "partition_range": f"{first}...{last}",
        }
    )
