"""What the Dagster catalog shows for each warehouse asset: owners, kinds, schema, lineage, version.

The facts live as plain data beside the SQL (column descriptions in `warehouse/schema.py`,
each derived column's raw source columns in `transforms/`); this module only turns them
into Dagster's metadata types, so the UI and the SQL cannot drift apart.
"""

from collections.abc import Iterable

from dagster import (
    AssetKey,
    TableColumn,
    TableColumnConstraints,
    TableColumnDep,
    TableColumnLineage,
    TableSchema,
)

from ..transforms import DerivedTable
from ..transforms.table import sql_fingerprint
from ..warehouse.schema import RECORDINGS_COLUMN_DESCRIPTIONS, RECORDINGS_COLUMNS
from ..warehouse.staging import raw_table_sql


RAW_KINDS = {"siro", "duckdb"}
DERIVED_KINDS = {"duckdb"}

# The column that holds the partition key in every table: Dagster's DuckDB I/O managers
# read exactly one partition's rows with it (`WHERE partition_date = ...`).
PARTITION_EXPR = "partition_date"


def table_column(name: str, sql_type: str, description: str) -> TableColumn:
    """One catalog column from its SQL type: `NOT NULL` becomes the nullable constraint."""
    return TableColumn(
        name=name,
        type=sql_type.replace(" NOT NULL", ""),
        description=description,
        constraints=TableColumnConstraints(nullable="NOT NULL" not in sql_type),
    )


def table_schema(columns: Iterable[tuple[str, str, str]]) -> TableSchema:
    """A catalog schema from (name, SQL type, description) triples, in table order."""
    return TableSchema(columns=[table_column(*column) for column in columns])


def raw_table_schema() -> TableSchema:
    """`siro.recordings`' columns with their types and descriptions."""
    return table_schema(
        (name, sql_type, RECORDINGS_COLUMN_DESCRIPTIONS[name]) for name, sql_type in RECORDINGS_COLUMNS
    )


def derived_table_schema(table: DerivedTable) -> TableSchema:
    """A derived table's columns with their types and descriptions."""
    return table_schema((c.name, c.sql_type, c.description) for c in table.columns)


def column_lineage(table: DerivedTable, recordings_key: AssetKey) -> TableColumnLineage:
    """Each derived column's raw source columns (of `recordings_key`), as `dagster/column_lineage`."""
    return TableColumnLineage(
        deps_by_column={
            column.name: [TableColumnDep(asset_key=recordings_key, column_name=source) for source in column.sources]
            for column in table.columns
            if column.sources
        }
    )


def raw_code_version() -> str:
    """Changes when the staging SQL or the raw table's columns change."""
    return sql_fingerprint(*raw_table_sql())


def table_metadata(qualified_name: str, schema: TableSchema) -> dict:
    """Definition metadata every warehouse asset carries."""
    return {
        "dagster/table_name": qualified_name,
        "dagster/column_schema": schema,
        "partition_expr": PARTITION_EXPR,
    }


__all__ = [
    "DERIVED_KINDS",
    "PARTITION_EXPR",
    "RAW_KINDS",
    "column_lineage",
    "derived_table_schema",
    "raw_code_version",
    "raw_table_schema",
    "table_metadata",
]
