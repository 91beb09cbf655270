"""One webserver + daemon for the UI tests, with a partition-range backfill launched through GraphQL."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from siro_assets.defs.catalog import RECORDINGS_KEY
from siro_assets.transforms import DERIVED_TABLES
from siro_assets.warehouse.schema import SCHEMA

from .dagster_ui import BACKFILL_TIMEOUT, DagsterUi

BACKFILL_PARTITIONS = ["2026-03-01", "2026-03-02"]
SIRO_ASSET_PATHS = [RECORDINGS_KEY.path, *[[SCHEMA, table.name] for table in DERIVED_TABLES]]

LAUNCH_BACKFILL = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on InvalidStepError { invalidStepKey }
    ... on PartitionSetNotFoundError { message }
    ... on UnauthorizedError { message }
  }
}
"""

BACKFILL_STATUS = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { id status numPartitions runs { runId status tags { key value } } }
    ... on PythonError { message }
  }
}
"""

# Terminal backfill statuses; only COMPLETED_SUCCESS is what the tests want.
FINISHED = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}


@dataclass
class Backfilled:
    """The running UI and the backfill it has finished."""

    ui: DagsterUi
    backfill: dict


def launch_backfill(ui: DagsterUi, asset_paths: list[list[str]], partitions: list[str]) -> str:
    """Launch an asset backfill of `partitions` through GraphQL, as the UI's dialog does."""
    data = ui.graphql(
        LAUNCH_BACKFILL,
        {
            "params": {
                "assetSelection": [{"path": path} for path in asset_paths],
                "partitionNames": partitions,
                "title": "e2e backfill",
            }
        },
    )
    launched = data["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", f"{launched}\n{ui.logs()}"
    return launched["backfillId"]


def backfill_status(ui: DagsterUi, backfill_id: str) -> dict:
    """The backfill as GraphQL reports it (status, runs)."""
    return ui.graphql(BACKFILL_STATUS, {"id": backfill_id})["partitionBackfillOrError"]


@pytest.fixture(scope="session")
def backfilled_ui(tmp_path_factory) -> Backfilled:
    """A webserver and daemon on 127.0.0.1 whose instance has a finished two-day backfill.

    The backfill is submitted before the daemon starts: the backfill daemon evaluates once
    at start-up and then every 30 s, so this order saves most of one interval.
    """
    ui = DagsterUi(tmp_path_factory.mktemp("dagster_ui"))
    try:
        ui.start_webserver()
        backfill_id = launch_backfill(ui, SIRO_ASSET_PATHS, BACKFILL_PARTITIONS)
        ui.start_daemon()
        backfill = ui.wait_for(
            f"backfill {backfill_id} to finish",
            lambda: (status := backfill_status(ui, backfill_id))["status"] in FINISHED and status,
            BACKFILL_TIMEOUT,
            interval=1.0,
        )
        yield Backfilled(ui=ui, backfill=backfill)
    finally:
        ui.stop()
