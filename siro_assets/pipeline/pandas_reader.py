"""Read siro tables as pandas DataFrames, partition-aligned, without ever writing the warehouse."""

from __future__ import annotations

from typing import Any

from dagster import InputContext, IOManager, OutputContext
from dagster_duckdb_pandas import DuckDBPandasIOManager
from pydantic import Field


class SiroWarehouseReader(DuckDBPandasIOManager):
    """`DuckDBPandasIOManager` that opens the warehouse read-only and refuses to store outputs.

    Use it as the `input_manager_key` of inputs that are siro assets. The siro assets carry
    `partition_expr: partition_date`, so an input receives exactly the rows of the
    partitions it depends on (a weekly asset gets its seven days). DuckDB's
    `access_mode: READ_ONLY` makes the connection unable to write even by mistake; the
    connection lives only while an input loads, because an open reader blocks the
    pipeline's writer (DuckDB locks per process).

    Do not name the warehouse file `siro.duckdb`: DuckDB names a file's catalog after its
    stem, and a catalog `siro` makes the schema `siro` ambiguous.
    """

    connection_config: dict[str, Any] = Field(
        default={"access_mode": "READ_ONLY"},
        description="DuckDB settings; access_mode READ_ONLY is enforced.",
    )

    def create_io_manager(self, context) -> IOManager:
        if str(self.connection_config.get("access_mode", "")).upper() != "READ_ONLY":
            raise ValueError("SiroWarehouseReader opens the warehouse with access_mode READ_ONLY only")
        return _LoadOnly(super().create_io_manager(context))


class _LoadOnly(IOManager):
    """Loads through the wrapped DuckDB I/O manager; refuses to store anything."""

    def __init__(self, reader: IOManager):
        self._reader = reader

    def load_input(self, context: InputContext):
        return self._reader.load_input(context)

    def handle_output(self, context: OutputContext, obj) -> None:
        name = context.asset_key.to_user_string() if context.has_asset_key else "this output"
        raise TypeError(
            f"{name} tried to store its output through SiroWarehouseReader, which only reads "
            "the siro warehouse. Give the asset its own io_manager_key (for example a "
            "DuckDBPandasIOManager on another file)."
        )
