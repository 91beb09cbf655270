"""Read siro tables as pandas DataFrames, partition-aligned, without ever writing the warehouse.

The warehouse is a DuckDB file or a DuckLake; either way the connection comes from
`warehouse.backend.open_warehouse(read_only=True)`, so `siro.<table>` resolves whatever
the file is called and a lake is read at one consistent snapshot.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from dagster import ConfigurableIOManager, InputContext, OutputContext
from pydantic import Field

from ..warehouse.backend import open_warehouse
from ..warehouse.lake import CATALOG_ENV_VAR, DATA_PATH_ENV_VAR, DUCKDB, DUCKLAKE, LakeSettings
from ..warehouse.schema import SCHEMA

if TYPE_CHECKING:  # pandas is imported on first read: every run process loads this module
    import pandas as pd


class SiroWarehouseReader(ConfigurableIOManager):
    """An input manager that loads siro tables as DataFrames, read-only, and stores nothing.

    Use it as the `input_manager_key` of inputs that are siro assets. The siro assets carry
    `partition_expr: partition_date`, so an input receives exactly the rows of the
    partitions it depends on (a weekly asset gets its seven days). The connection is
    read-only (a write fails even by mistake) and lives only while an input loads.

    On a DuckDB file an open reader blocks the pipeline's writer (DuckDB locks per
    process), so keep consumers in the writers' pool. On a lake (`backend: ducklake`)
    a reader reads a committed snapshot and never blocks a writer.
    """

    database: str = Field(description="The warehouse's DuckDB file (a lake: unused).")
    connection_config: dict[str, Any] = Field(
        default={"access_mode": "READ_ONLY"},
        description="DuckDB settings; access_mode READ_ONLY is enforced.",
    )
    schema_: str = Field(default=SCHEMA, alias="schema", description="SQL schema of the siro tables.")
    lock_timeout_seconds: float = Field(
        default=900.0, description="A DuckDB file: how long to wait while a writer holds it."
    )
    backend: str = Field(default=DUCKDB, description="`duckdb` (the file `database`) or `ducklake`.")
    ducklake_catalog: str | None = Field(
        default=None, repr=False, description="libpq DSN of the lake's PostgreSQL catalog (SIRO_DUCKLAKE_CATALOG)."
    )
    ducklake_data_path: str | None = Field(
        default=None, description="The lake's data files: a directory or s3://bucket/prefix/ (SIRO_DUCKLAKE_DATA_PATH)."
    )

    def setup_for_execution(self, context) -> None:
        if str(self.connection_config.get("access_mode", "")).upper() != "READ_ONLY":
            raise ValueError("SiroWarehouseReader opens the warehouse with access_mode READ_ONLY only")

    def _lake(self) -> LakeSettings | None:
        if self.backend != DUCKLAKE:
            return None
        # AWS_* from this process's environment, as the warehouse resource reads them.
        env = {**os.environ, CATALOG_ENV_VAR: self.ducklake_catalog or "", DATA_PATH_ENV_VAR: self.ducklake_data_path or ""}
        return LakeSettings.from_env(env)

    def load_input(self, context: InputContext) -> pd.DataFrame:
        """The input's siro table, only the rows of the partitions the input depends on."""
        import pandas as pd

        table = f"{self.schema_}.{context.asset_key.path[-1]}"
        columns = (context.definition_metadata or {}).get("columns")
        query = f"SELECT {', '.join(columns) if columns else '*'} FROM {table}"
        params: list[object] = []
        if context.has_asset_partitions:
            if not context.asset_partition_keys:
                return pd.DataFrame()
            upstream = context.upstream_output.definition_metadata if context.upstream_output else {}
            expr = (upstream or {}).get("partition_expr")
            if not expr:
                raise ValueError(f"{table} is partitioned but its asset has no partition_expr metadata")
            window = context.asset_partitions_time_window
            query += f" WHERE {expr} >= ? AND {expr} < ?"
            params = [_naive_utc(window.start), _naive_utc(window.end)]
        config = {k: v for k, v in self.connection_config.items() if k != "access_mode"}
        con = open_warehouse(self.database, lake=self._lake(), read_only=True, config=config,
                             lock_timeout=self.lock_timeout_seconds, schema=self.schema_)
        try:
            return con.execute(query, params).fetchdf()
        finally:
            con.close()

    def handle_output(self, context: OutputContext, obj) -> None:
        name = context.asset_key.to_user_string() if context.has_asset_key else "this output"
        raise TypeError(
            f"{name} tried to store its output through SiroWarehouseReader, which only reads "
            "the siro warehouse. Give the asset its own io_manager_key (for example a "
            "DuckDBPandasIOManager on another file)."
        )


def _naive_utc(moment: datetime) -> datetime:
    # DuckDB compares a DATE column with a plain TIMESTAMP; every connection runs in UTC.
    return moment.astimezone(timezone.utc).replace(tzinfo=None)
