"""The user's code location: the siro project's Definitions merged with the scorecard.

    SIRO_SIMULATOR=1 dagster dev -m examples.weekly_rep_scorecard.definitions

The scorecard writes its own DuckDB file (`SCORECARD_DUCKDB_PATH`), never the siro
warehouse, which it reads read-only through `SiroWarehouseReader`.
"""

from __future__ import annotations

import os

from dagster import Definitions
from dagster_duckdb_pandas import DuckDBPandasIOManager

# The module, not its `defs`: Dagster refuses a module with two Definitions at module scope.
from siro_assets import definitions as siro_project

from .assets import weekly_rep_scorecard
from .warehouse_reader import SiroWarehouseReader

# Not `rep_scorecards.duckdb`: DuckDB names the catalog after the file's stem, and that
# would collide with the schema `rep_scorecards` the asset key puts the table in.
DEFAULT_SCORECARD_PATH = "data/consumer_warehouse.duckdb"


def consumer_definitions(warehouse_database: str, scorecard_database: str) -> Definitions:
    """The consumer's own assets and resources, reading `warehouse_database`."""
    return Definitions(
        assets=[weekly_rep_scorecard],
        resources={
            "siro_reader": SiroWarehouseReader(database=warehouse_database),
            "scorecard_io_manager": DuckDBPandasIOManager(database=scorecard_database),
        },
    )


defs = Definitions.merge(
    siro_project.defs,
    consumer_definitions(
        # The same file the pipeline writes (SIRO_DUCKDB_PATH or its default).
        warehouse_database=siro_project.defs.resources["warehouse"].database,
        scorecard_database=os.environ.get("SCORECARD_DUCKDB_PATH", DEFAULT_SCORECARD_PATH),
    ),
)
