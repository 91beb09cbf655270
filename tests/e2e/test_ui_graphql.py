"""End to end 1: a partition-range backfill launched through Dagster's GraphQL API, read back the same way.

The webserver and daemon run as users run them (see `conftest.py`); everything is asserted
from what the GraphQL API returns, plus one cross-check against the DuckDB file.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from siro_assets.pipeline.freshness import partition_deadline
from siro_assets.pipeline.partitions import partition_key
from siro_assets.warehouse.connection import duckdb_connection

from .conftest import BACKFILL_PARTITIONS, SIRO_ASSET_PATHS, automations

# Both UI test modules share one worker (tests/conftest.py) and so one server.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

MATERIALIZATIONS = """
query Materializations($path: [String!]!, $partitions: [String!]) {
  assetOrError(assetKey: {path: $path}) {
    ... on Asset {
      assetMaterializations(partitions: $partitions) {
        partition runId
        metadataEntries {
          label __typename
          ... on IntMetadataEntry { intValue }
          ... on FloatMetadataEntry { floatValue }
        }
      }
    }
  }
}
"""

CHECKS = """
query Checks($path: [String!]!) {
  assetNodeOrError(assetKey: {path: $path}) {
    ... on AssetNode {
      assetChecksOrError {
        ... on AssetChecks {
          checks {
            name
            executionForLatestMaterialization {
              runId status
              evaluation { success description metadataEntries { label } }
            }
          }
        }
      }
    }
  }
}
"""


def _numbers(event: dict) -> dict[str, float]:
    """The event's numeric metadata (what the asset page plots), by label."""
    numbers = {}
    for entry in event["metadataEntries"]:
        if entry["__typename"] == "IntMetadataEntry":
            numbers[entry["label"]] = entry["intValue"]
        elif entry["__typename"] == "FloatMetadataEntry":
            numbers[entry["label"]] = entry["floatValue"]
    return numbers


def test_backfill_through_graphql_materializes_every_asset_and_passes_its_checks(backfilled_ui):
    ui, backfill = backfilled_ui.ui, backfilled_ui.backfill
    assert backfill["status"] == "COMPLETED_SUCCESS", f"{backfill}\n{ui.logs()}"
    assert backfill["numPartitions"] == len(BACKFILL_PARTITIONS)
    # BackfillPolicy.single_run(): the whole range is one run.
    (run,) = backfill["runs"]
    assert run["status"] == "SUCCESS"
    tags = {tag["key"]: tag["value"] for tag in run["tags"]}
    assert tags["dagster/backfill"] == backfill["id"]
    assert (tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"]) == (
        BACKFILL_PARTITIONS[0],
        BACKFILL_PARTITIONS[-1],
    )

    # Asset events: every asset, every partition, from that run, with plottable numbers.
    raw_numbers = None
    for path in SIRO_ASSET_PATHS:
        events = ui.graphql(MATERIALIZATIONS, {"path": path, "partitions": BACKFILL_PARTITIONS})
        events = events["assetOrError"]["assetMaterializations"]
        assert sorted(e["partition"] for e in events) == BACKFILL_PARTITIONS, path
        assert {e["runId"] for e in events} == {run["runId"]}, path
        numbers = _numbers(events[0])
        assert {"dagster/row_count", "duration_seconds"} <= set(numbers), (path, numbers)
        if path == SIRO_ASSET_PATHS[0]:
            raw_numbers = numbers
    assert raw_numbers["api_requests"] > 0
    assert raw_numbers["api_429s"] == 0
    with duckdb_connection(ui.warehouse, read_only=True) as con:
        stored = con.execute(
            "SELECT count(*) FROM siro.recordings WHERE partition_date IN (SELECT unnest($p::DATE[]))",
            {"p": BACKFILL_PARTITIONS},
        ).fetchone()[0]
    assert raw_numbers["dagster/row_count"] == stored > 0

    # Check results: every data check ran in the backfill's run and passed.
    due = partition_key(partition_deadline(datetime.now(timezone.utc)).expected_day)
    seen = 0
    for path in SIRO_ASSET_PATHS:
        node = ui.graphql(CHECKS, {"path": path})["assetNodeOrError"]
        for check in node["assetChecksOrError"]["checks"]:
            execution = check["executionForLatestMaterialization"]
            assert execution and execution["runId"] == run["runId"], (path, check)
            if check["name"] == "yesterday_partition_complete":
                # Only March was backfilled, so the freshness check must say the day due is late.
                if due not in BACKFILL_PARTITIONS:
                    assert execution["status"] == "FAILED", check
                    assert f"Partition {due} is late" in execution["evaluation"]["description"]
                continue
            assert execution["status"] == "SUCCEEDED", (path, check)
            assert execution["evaluation"]["success"], (path, check)
            assert "offending_rows" in {m["label"] for m in execution["evaluation"]["metadataEntries"]}
            seen += 1
    assert seen >= 2 * len(SIRO_ASSET_PATHS) - 1  # every table has at least one data check; most two


def test_sensor_and_schedules_are_on_by_default_with_descriptions_and_toggle_off(backfilled_ui):
    defaults = backfilled_ui.default_automations
    assert set(defaults) == {"recordings_updated_sensor", "nightly_recordings_schedule", "partition_freshness_schedule"}
    for name, automation in defaults.items():
        assert automation["status"] == "RUNNING", name
        assert automation["description"], name
    # The fixture switched them off through GraphQL before the daemon started.
    assert {a["status"] for a in automations(backfilled_ui.ui).values()} == {"STOPPED"}
