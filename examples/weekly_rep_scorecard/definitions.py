"""The user's code location: the siro project's Definitions merged with the scorecard.

    SIRO_SIMULATOR=1 dagster dev -m examples.weekly_rep_scorecard.definitions

The scorecard writes its own DuckDB file (`SCORECARD_DUCKDB_PATH`), never the siro
warehouse, which it reads read-only through the input manager the Siro component offers
for its own warehouse (`siro_pandas_reader`, `siro_assets.pipeline.pandas_reader`).
"""

from __future__ import annotations

import os

from dagster import Definitions
from dagster_duckdb_pandas import DuckDBPandasIOManager

# The module, not its `defs`: Dagster refuses a module with two Definitions at module scope.
from siro_assets import definitions as siro_project

from .assets import weekly_rep_scorecard

# Not `rep_scorecards.duckdb`: DuckDB names the catalog after the file's stem, and that
# would collide with the schema `rep_scorecards` the asset key puts the table in.
DEFAULT_SCORECARD_PATH = "data/consumer_warehouse.duckdb"


def consumer_definitions(scorecard_database: str) -> Definitions:
    """The consumer's own asset and the file it writes; it reads siro tables through the
    component's `siro_pandas_reader`, so no reader code is copied here."""
    return Definitions(
        assets=[weekly_rep_scorecard],
        resources={"scorecard_io_manager": DuckDBPandasIOManager(database=scorecard_database)},
    )


defs = Definitions.merge(
    siro_project.defs,
    consumer_definitions(os.environ.get("SCORECARD_DUCKDB_PATH", DEFAULT_SCORECARD_PATH)),
)
