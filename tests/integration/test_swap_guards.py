"""A day never shrinks, never holds another organization's data, and never goes back in time."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone

import pytest
from dagster import materialize

from siro_assets.pipeline.ingest.recordings import build_recordings_asset
from tests.default_instance import recordings
from siro_assets.pipeline.resources import SiroApiResource
from siro_assets.simulator import FixedClock, SimulatorApi, World, WorldConfig
from siro_assets.simulator.server import run_in_thread
from siro_assets.warehouse.connection import duckdb_connection
from siro_assets.warehouse.identity import OrganizationMismatchError
from siro_assets.pipeline.settings import PipelineSettings
from siro_assets.warehouse.swap import allow_removals_run_config
from tests.support import NOW, simulated_siro

DAY = date(2026, 3, 2)
TOKEN = "swap-guards-test-token"


def _run(siro, warehouse, *, run_config=None, raise_on_error=True, asset=recordings, prefix="siro"):
    return materialize(
        [asset],
        resources={f"{prefix}_api": siro, f"{prefix}_warehouse": warehouse},
        partition_key=DAY.isoformat(),
        run_config=run_config,
        raise_on_error=raise_on_error,
    )


def _rows(warehouse) -> list[tuple]:
    with duckdb_connection(warehouse.database, read_only=True) as con:
        return con.execute("SELECT id, updated_at, payload FROM siro.recordings ORDER BY id").fetchall()


def _failure(result):
    """The user-code error behind a failed step (Dagster wraps it)."""
    error = result.get_step_failure_events()[0].event_specific_data.error
    while error.cause is not None and error.cls_name.startswith("Dagster"):
        error = error.cause
    return error


class _IncidentApi(SimulatorApi):
    """A server in an incident: every list answers 200 with no recordings."""

    def _list(self, params):
        return 200, {"content-type": "application/json"}, json.dumps({"data": [], "cursor": None}).encode()


@pytest.fixture
def http_siro():
    """Start a simulator (`api_class`, `organization_id`) over HTTP; returns (api, resource)."""
    stops = []

    def start(api_class=SimulatorApi, organization_id="org_sim"):
        api = api_class(World(WorldConfig(organization_id=organization_id)), FixedClock(NOW), token=TOKEN)
        base_url, stop = run_in_thread(api)
        stops.append(stop)
        resource = SiroApiResource(token=TOKEN, base_url=base_url, requests_per_minute=1_000_000,
                                   initial_backoff_seconds=0.0)
        return api, resource

    yield start
    for stop in stops:
        stop()


def test_an_empty_answer_for_a_day_is_refused_and_keeps_the_rows(warehouse, http_siro):
    _run(simulated_siro(), warehouse)
    before = _rows(warehouse)
    assert before

    _, incident = http_siro(_IncidentApi)
    result = _run(incident, warehouse, raise_on_error=False)
    assert not result.success
    failure = _failure(result)
    assert failure.cls_name == "PartitionShrinkError"
    assert f"{DAY}: {len(before)} recording(s)" in failure.message
    assert _rows(warehouse) == before

    # The override the error names, for a genuine purge.
    assert allow_removals_run_config("siro__recordings") in failure.message
    purge = json.loads(allow_removals_run_config("siro__recordings"))
    _run(incident, warehouse, run_config=purge)
    assert _rows(warehouse) == []


def test_the_refusal_names_the_run_config_of_the_instance_that_refused(warehouse, http_siro):
    west = build_recordings_asset(PipelineSettings(key_prefix="west"))
    _run(simulated_siro(), warehouse, asset=west, prefix="west")
    _, incident = http_siro(_IncidentApi)
    failure = _failure(_run(incident, warehouse, raise_on_error=False, asset=west, prefix="west"))
    assert failure.cls_name == "PartitionShrinkError"
    assert "siro__recordings" not in failure.message
    config = allow_removals_run_config("west__recordings")
    assert config in failure.message
    # What the message says to run is accepted by that instance's job and purges the day.
    assert _run(incident, warehouse, asset=west, prefix="west", run_config=json.loads(config)).success
    assert _rows(warehouse) == []


def test_a_token_of_another_organization_fails_before_anything_is_written(warehouse, http_siro):
    _run(simulated_siro(), warehouse)  # the simulator's organization is org_sim
    before = _rows(warehouse)

    api, other = http_siro(organization_id="org_other")
    result = _run(other, warehouse, raise_on_error=False)
    assert not result.success
    failure = _failure(result)
    assert failure.cls_name == "OrganizationMismatchError"
    assert "'org_sim'" in failure.message and "'org_other'" in failure.message
    assert api.request_count == 1  # caller-identity only: not one page was fetched
    assert _rows(warehouse) == before


def test_the_organization_is_checked_again_inside_the_swap(tmp_path):
    from siro_assets.warehouse.staging import RecordingsStage
    from siro_assets.warehouse.swap import swap_partitions
    from tests.raw_payloads import recording

    db = tmp_path / "w.duckdb"
    for organization, rid in (("org_a", "a"), ("org_b", "b")):
        with RecordingsStage() as stage:
            stage.add_page(json.dumps({"data": [recording(rid, DAY)], "cursor": None}))
            stage.finalize([DAY])
            with duckdb_connection(db) as con:
                if organization == "org_a":
                    swap_partitions(con, stage, [DAY], organization_id=organization)
                else:
                    with pytest.raises(OrganizationMismatchError, match="'org_a'.*'org_b'"):
                        swap_partitions(con, stage, [DAY], organization_id=organization)
    with duckdb_connection(db, read_only=True) as con:
        assert con.execute("SELECT id FROM siro.recordings").fetchall() == [("a",)]


def test_a_run_that_fetched_earlier_does_not_undo_a_newer_one(warehouse):
    later = simulated_siro()  # sees the whole day and every later change
    earlier = simulated_siro(now=datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc))
    _run(later, warehouse)
    newest = _rows(warehouse)

    # The overlapping run that began fetching at noon swaps last: its view is older.
    _run(earlier, warehouse)
    assert _rows(warehouse) == newest
    with duckdb_connection(warehouse.database, read_only=True) as con:
        assert con.execute("SELECT max(created_at) FROM siro.recordings").fetchone()[0] > datetime(
            2026, 3, 2, 12, 0, tzinfo=timezone.utc)


