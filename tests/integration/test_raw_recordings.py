"""Real Dagster materializations of `siro/recordings` against the in-process simulator."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from dagster import AssetSelection, DagsterInstance, build_schedule_context, materialize

from siro_assets.pipeline.partitions import day_start
from siro_assets.pipeline.resources import MissingTokenError, SiroApiResource
from tests.default_instance import nightly_recordings_schedule, recordings
from siro_assets.api_client import SiroMalformedResponseError
from siro_assets.api_client.timestamps import format_ts
from siro_assets.warehouse.connection import duckdb_connection

from tests.support import NOW, partition_range_tags, simulated_siro

DAY = date(2026, 3, 2)


def _materialize(siro, warehouse, *, key=None, key_range=None, raise_on_error=True):
    kwargs = {"partition_key": key} if key else {}
    if key_range:
        kwargs = {"tags": partition_range_tags(key_range.start, key_range.end)}
    return materialize(
        [recordings],
        resources={"siro_api": siro, "siro_warehouse": warehouse},
        raise_on_error=raise_on_error,
        **kwargs,
    )


def _truth_ids(siro, first: date, last: date) -> dict[str, str]:
    world_payloads = siro.simulator_api().world.recordings(
        NOW, created_from=day_start(first), created_to=day_start(last + timedelta(days=1))
    )
    return {p["id"]: p["createdAt"] for p in world_payloads}


def _table(warehouse, sql: str, params=None):
    with duckdb_connection(warehouse.database, read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def test_adjacent_days_hold_every_recording_exactly_once(warehouse):
    siro = simulated_siro()
    for key in ("2026-03-02", "2026-03-03"):
        _materialize(siro, warehouse, key=key)

    truth = _truth_ids(siro, date(2026, 3, 2), date(2026, 3, 3))
    rows = _table(warehouse, "SELECT id, partition_date, created_at FROM siro.recordings")
    assert sorted(r[0] for r in rows) == sorted(truth)  # no loss, no duplicate
    for _, partition, created in rows:
        assert created.astimezone(timezone.utc).date() == partition

    midnight = day_start(date(2026, 3, 3))
    at_midnight = [r for r in rows if r[2] == midnight]
    assert at_midnight, "the simulator puts a recording exactly at midnight"
    assert {r[1] for r in at_midnight} == {date(2026, 3, 3)}
    last_ms = midnight - timedelta(milliseconds=1)
    assert {r[1] for r in rows if r[2] == last_ms} == {date(2026, 3, 2)}


def test_payload_keeps_everything_the_api_sent(warehouse):
    siro = simulated_siro()
    _materialize(siro, warehouse, key="2026-03-02")
    truth = {
        p["id"]: p
        for p in siro.simulator_api().world.recordings(
            NOW, created_from=day_start(DAY), created_to=day_start(DAY + timedelta(days=1))
        )
    }
    import json

    for rid, payload, crm in _table(warehouse, "SELECT id, payload, crm FROM siro.recordings"):
        stored = json.loads(payload)
        assert set(stored) >= {"id", "createdAt", "updatedAt", "links"}
        expected = truth[rid]
        for key in ("crm", "summary", "entityExtractions", "deleted", "updatedAt"):
            assert stored.get(key) == expected.get(key), (rid, key)
        assert (crm is None) == (expected.get("crm") is None)


def test_rerun_replaces_the_partition_idempotently(warehouse):
    siro = simulated_siro()
    _materialize(siro, warehouse, key="2026-03-02")
    first = _table(warehouse, "SELECT * EXCLUDE (ingested_at) FROM siro.recordings ORDER BY id")
    _materialize(siro, warehouse, key="2026-03-02")
    second = _table(warehouse, "SELECT * EXCLUDE (ingested_at) FROM siro.recordings ORDER BY id")
    assert first == second and len(first) > 0


def test_failure_mid_partition_keeps_previous_rows(warehouse):
    early = simulated_siro(now=day_start(DAY) + timedelta(hours=20))
    _materialize(early, warehouse, key="2026-03-02")
    before = _table(warehouse, "SELECT * FROM siro.recordings ORDER BY id")

    # Later clock: the day now has more and changed rows, but the listing fails after two
    # good pages with bodies that stay truncated through every retry.
    failing = simulated_siro(
        simulator_page_size_cap=5,
        max_attempts=2,
        simulator_fault_script=["ok", "ok", "truncate", "truncate", "truncate", "truncate"],
    )
    result = _materialize(failing, warehouse, key="2026-03-02", raise_on_error=False)
    assert not result.success
    errors = [e for e in result.all_events if e.is_step_failure]
    assert SiroMalformedResponseError.__name__ in str(errors[0].step_failure_data.error)
    assert _table(warehouse, "SELECT * FROM siro.recordings ORDER BY id") == before


def test_multi_day_range_is_one_run_with_every_day(warehouse):
    from dagster import PartitionKeyRange

    siro = simulated_siro(simulator_page_size_cap=7)
    result = _materialize(siro, warehouse, key_range=PartitionKeyRange("2026-03-01", "2026-03-04"))
    assert result.success
    counts = dict(_table(warehouse, "SELECT partition_date, count(*) FROM siro.recordings GROUP BY 1"))
    truth = _truth_ids(siro, date(2026, 3, 1), date(2026, 3, 4))
    assert sum(counts.values()) == len(truth)
    assert sorted(counts) == [date(2026, 3, d) for d in range(1, 5)]
    materializations = result.asset_materializations_for_node("siro__recordings")
    metadata = materializations[0].metadata
    assert metadata["partitions"].value == 4
    assert metadata["api_pages"].value >= len(truth) // 7


def test_retries_through_429_and_5xx_bursts_and_reports_them(warehouse):
    siro = simulated_siro(simulator_fault_script=["429", "429", "500", "503", "disconnect"])
    result = _materialize(siro, warehouse, key="2026-03-02")
    metadata = result.asset_materializations_for_node("siro__recordings")[0].metadata
    assert metadata["api_retries"].value == 5
    assert metadata["api_429s"].value == 2
    assert metadata["dagster/row_count"].value == len(_truth_ids(siro, DAY, DAY))


def test_missing_token_fails_at_once_naming_the_variable(warehouse):
    result = _materialize(SiroApiResource(token=None), warehouse, key="2026-03-02", raise_on_error=False)
    assert not result.success
    error = str([e for e in result.all_events if e.is_step_failure][0].step_failure_data.error)
    assert "SIRO_API_TOKEN" in error and MissingTokenError.__name__ in error


def test_schedule_requests_yesterday_with_a_stable_run_key():
    from siro_assets.definitions import defs

    context = build_schedule_context(
        scheduled_execution_time=datetime(2026, 3, 5, 0, 15, tzinfo=timezone.utc),
        instance=DagsterInstance.ephemeral(),
        repository_def=defs.get_repository_def(),
    )
    request = nightly_recordings_schedule.evaluate_tick(context).run_requests[0]
    assert request.partition_key == "2026-03-04"
    assert request.run_key == "2026-03-04"
    assert nightly_recordings_schedule.cron_schedule == "15 0 * * *"
    assert nightly_recordings_schedule.execution_timezone == "UTC"
    job = defs.resolve_job_def(nightly_recordings_schedule.job_name)
    assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} >= {
        "siro/recordings", "siro/recording_crm", "siro/recording_entity_extractions"}


def test_schedule_skips_days_before_the_first_partition():
    from siro_assets.definitions import defs

    context = build_schedule_context(
        scheduled_execution_time=datetime(2026, 1, 1, 0, 15, tzinfo=timezone.utc),
        instance=DagsterInstance.ephemeral(),
        repository_def=defs.get_repository_def(),
    )
    result = nightly_recordings_schedule.evaluate_tick(context)
    assert not result.run_requests and "before the first partition" in result.skip_message


def test_metadata_and_logs_never_contain_the_token(warehouse):
    secret = "fake-token-for-leak-check"
    # Retries on the way (logged at WARNING by the client) give the token chances to leak.
    siro = simulated_siro(token=secret, simulator_fault_script=["500", "429", "disconnect"])
    result = _materialize(siro, warehouse, key="2026-03-02")
    text = repr(result.asset_materializations_for_node("siro__recordings")[0].metadata)
    assert secret not in text
    events = "\n".join(repr(e) for e in result.all_events)
    assert "fetched_up_to" in events and secret not in events
    assert secret not in repr(SiroApiResource(token=secret).client())
    assert secret not in repr(SiroApiResource(token=secret)) and secret not in str(SiroApiResource(token=secret))
    assert "fetched_up_to" in text and format_ts(NOW) in text


def test_raw_checks_pass_on_ingested_data_and_catch_planted_faults(warehouse):
    from tests.default_instance import raw_asset_checks

    result = materialize(
        [recordings, *raw_asset_checks],
        resources={"siro_api": simulated_siro(), "siro_warehouse": warehouse},
        partition_key="2026-03-02",
    )
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == 3 and all(e.passed for e in evaluations)

    with duckdb_connection(warehouse.database) as con:
        # A duplicate of one recording in the next day's partition, with a created_at
        # that does not belong there: two checks must flag it.
        con.execute(
            "INSERT INTO siro.recordings SELECT * REPLACE (partition_date + 1 AS partition_date) "
            "FROM siro.recordings LIMIT 1"
        )
    checks_only = materialize(
        [recordings, *raw_asset_checks],
        resources={"siro_api": simulated_siro(), "siro_warehouse": warehouse},
        selection=AssetSelection.checks_for_assets(recordings),
        raise_on_error=False,
    )
    outcome = {e.check_name: e.passed for e in checks_only.get_asset_check_evaluations()}
    assert outcome == {"id_unique": False, "created_at_in_partition": False, "keys_not_null": True}


def test_a_partial_day_fills_in_when_rematerialized_later(warehouse):
    """Today's partition pulled at noon, then again at night: the rerun adds the afternoon
    and the changes since, and never doubles the morning."""
    noon = day_start(DAY) + timedelta(hours=12)
    _materialize(simulated_siro(now=noon), warehouse, key="2026-03-02")
    morning = dict(_table(warehouse, "SELECT id, updated_at FROM siro.recordings"))
    assert morning and all(
        created < noon for (created,) in _table(warehouse, "SELECT created_at FROM siro.recordings"))

    night = day_start(DAY) + timedelta(hours=23, minutes=59)
    late = simulated_siro(now=night)
    _materialize(late, warehouse, key="2026-03-02")
    evening = dict(_table(warehouse, "SELECT id, updated_at FROM siro.recordings"))
    truth = late.simulator_api().world.recordings(
        night, created_from=day_start(DAY), created_to=day_start(DAY + timedelta(days=1)))
    assert sorted(evening) == sorted(p["id"] for p in truth)
    assert set(morning) < set(evening)
    assert any(evening[rid] > morning[rid] for rid in morning), "some morning recordings changed since"
