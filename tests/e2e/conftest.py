"""One webserver + daemon for the UI tests, with a partition-range backfill launched through GraphQL."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.default_instance import RECORDINGS_KEY
from siro_assets.transforms import DERIVED_TABLES

from .dagster_ui import BACKFILL_TIMEOUT, DagsterUi

BACKFILL_PARTITIONS = ["2026-03-01", "2026-03-02"]
SIRO_ASSET_PATHS = [RECORDINGS_KEY.path, *[[*RECORDINGS_KEY.path[:-1], table.name] for table in DERIVED_TABLES]]

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

AUTOMATIONS = """
query Automations {
  repositoryOrError(repositorySelector: {repositoryName: "__repository__", repositoryLocationName: "siro_assets"}) {
    ... on Repository {
      sensors { id name description sensorState { status } }
      schedules { id name description scheduleState { status } }
    }
    ... on PythonError { message }
  }
}
"""

STOP_SENSOR = """
mutation Stop($id: String!) {
  stopSensor(id: $id) { __typename ... on StopSensorMutationResult { instigationState { status } } }
}
"""

STOP_SCHEDULE = """
mutation Stop($id: String!) {
  stopRunningSchedule(id: $id) { __typename ... on ScheduleStateResult { scheduleState { status } } }
}
"""

# Terminal backfill statuses; only COMPLETED_SUCCESS is what the tests want.
FINISHED = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can tell whether the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@dataclass
class Backfilled:
    """The running UI, the backfill it has finished, and the automations as first loaded."""

    ui: DagsterUi
    backfill: dict
    default_automations: dict[str, dict]
    """name -> {description, status} of every sensor and schedule before the test stopped them."""


def automations(ui: DagsterUi) -> dict[str, dict]:
    """Every sensor and schedule of the code location: id, description and status."""
    repository = ui.graphql(AUTOMATIONS)["repositoryOrError"]
    found = {}
    for sensor in repository["sensors"]:
        found[sensor["name"]] = {"kind": "sensor", "id": sensor["id"], "description": sensor["description"],
                                 "status": sensor["sensorState"]["status"]}
    for schedule in repository["schedules"]:
        found[schedule["name"]] = {"kind": "schedule", "id": schedule["id"],
                                   "description": schedule["description"],
                                   "status": schedule["scheduleState"]["status"]}
    return found


def stop_automation(ui: DagsterUi, automation: dict) -> str:
    """Toggle a sensor or schedule off through GraphQL (the UI's switch); returns the new status."""
    if automation["kind"] == "sensor":
        result = ui.graphql(STOP_SENSOR, {"id": automation["id"]})["stopSensor"]
        return result["instigationState"]["status"]
    result = ui.graphql(STOP_SCHEDULE, {"id": automation["id"]})["stopRunningSchedule"]
    return result["scheduleState"]["status"]


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

    The sensor and schedules start RUNNING by default; they are switched off (through
    GraphQL, as the UI's toggles do) before the daemon starts, so that the instance holds
    exactly the backfill: the wall-clock simulator would otherwise hand the sensor today's
    changes. The backfill is submitted before the daemon starts too: the backfill daemon
    evaluates once at start-up and then every 30 s, so this order saves most of a cycle.
    """
    ui = DagsterUi(tmp_path_factory.mktemp("dagster_ui"))
    try:
        ui.start_webserver()
        defaults = automations(ui)
        for automation in defaults.values():
            if automation["status"] == "RUNNING":
                assert stop_automation(ui, automation) == "STOPPED", automation
        backfill_id = launch_backfill(ui, SIRO_ASSET_PATHS, BACKFILL_PARTITIONS)
        ui.start_daemon()
        backfill = ui.wait_for(
            f"backfill {backfill_id} to finish",
            lambda: (status := backfill_status(ui, backfill_id))["status"] in FINISHED and status,
            BACKFILL_TIMEOUT,
            interval=1.0,
        )
        yield Backfilled(ui=ui, backfill=backfill, default_automations=defaults)
    finally:
        ui.stop()
