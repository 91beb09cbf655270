"""The webhook sensor against the in-process simulator: inbox event -> tick -> run -> row."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from dagster import DagsterInstance, build_sensor_context

from siro_assets.pipeline.automation.jobs import build_recordings_job, pipeline_asset_keys, pipeline_selection
from siro_assets.pipeline.automation.webhook_sensor import build_webhook_sensor
from siro_assets.pipeline.ingest.refresh import RECORDING_IDS_TAG
from siro_assets.pipeline.settings import PipelineSettings, WebhookOptions
from siro_assets.webhooks.inbox import InboxEvent, SqliteInbox, inbox_path_for
from tests.integration.test_sensor import WORLD, find_late_link, materialize_day, query
from tests.support import simulated_siro

SETTINGS = PipelineSettings(webhooks=WebhookOptions(enabled=True))
SENSOR = build_webhook_sensor(SETTINGS, build_recordings_job(SETTINGS))


def _notify(warehouse, rid: str, message_id: str, endpoint: str = "siro") -> None:
    with SqliteInbox(inbox_path_for(warehouse.database)) as inbox:
        inbox.append(InboxEvent(endpoint=endpoint, message_id=message_id, event_type="integrations.recordingLinked",
                                recording_id=rid, payload={"recordingId": rid}))


def _tick(siro, warehouse, cursor=None, sensor=SENSOR):
    with DagsterInstance.ephemeral() as instance:
        context = build_sensor_context(instance=instance, cursor=cursor,
                                       resources={"siro_api": siro, "siro_warehouse": warehouse})
        return sensor.evaluate_tick(context)


def test_inbox_event_reaches_recording_crm_through_one_tick_and_its_run(warehouse):
    rid, created, linked = find_late_link()
    materialize_day(created.date(), simulated_siro(linked - timedelta(minutes=1)), warehouse)
    assert query(warehouse, "SELECT is_linked FROM siro.recording_crm WHERE recording_id = ?", [rid]) == [(False,)]

    siro = simulated_siro(linked + timedelta(seconds=30))
    _notify(warehouse, rid, "msg_1")
    _notify(warehouse, rid, "msg_2")  # a second event for the same recording: one id
    result = _tick(siro, warehouse)
    (request,) = result.run_requests
    assert request.tags[RECORDING_IDS_TAG] == rid and request.run_key == "webhooks:1-2"
    assert result.cursor == "2"
    # Every asset of the job, and only the checks a webhook run must not skip.
    assert set(request.asset_selection) == set(pipeline_asset_keys(SETTINGS))
    assert {(k.asset_key.to_user_string(), k.name) for k in request.asset_check_keys} == {
        ("siro/recordings", "id_unique"), ("siro/recordings", "keys_not_null"),
        ("siro/crm_writebacks", "no_outstanding_rejects_or_failures")}

    from siro_assets.definitions import defs
    run = defs.resolve_job_def(SETTINGS.recordings_job_name).execute_in_process(
        tags=dict(request.tags), resources={"siro_api": siro, "siro_warehouse": warehouse})
    assert run.success
    truth = WORLD.recording(rid, linked)["crm"]
    row = query(warehouse, "SELECT is_linked, engagement_external_id FROM siro.recording_crm WHERE recording_id = ?", [rid])
    assert row == [(True, (truth.get("engagement") or {}).get("externalId"))]
    # The writeback plan saw the link too, as after a polling changes-only run.
    plan = {s for (s,) in query(warehouse, "SELECT DISTINCT plan_status FROM siro.crm_writeback_plan WHERE recording_id = ?", [rid])}
    assert plan and "unlinked" not in plan
    # Exactly the notified id was fetched: one single-recording request, no day listing.
    (raw,) = [e for e in run.get_asset_materialization_events() if e.asset_key.path == ["siro", "recordings"]]
    assert raw.materialization.metadata["fetch"].value == "1 notified id(s)"

    # The next tick starts past the cursor: nothing new, no run. Starting from a
    # committed cursor, it marks those events drained (a full inbox drops them first).
    assert not _tick(siro, warehouse, result.cursor).run_requests
    import sqlite3

    with sqlite3.connect(inbox_path_for(warehouse.database)) as con:
        assert con.execute("SELECT endpoint, seq FROM webhook_consumed").fetchall() == [("siro", 2)]


def test_an_empty_inbox_tick_makes_no_api_request(warehouse, monkeypatch):
    siro = simulated_siro()
    _notify(warehouse, "rec_x", "msg_1")
    built = []
    for name in ("client", "async_client"):
        original = getattr(type(siro), name)
        monkeypatch.setattr(type(siro), name, lambda self, _o=original, **kw: built.append(1) or _o(self, **kw))
    result = _tick(siro, warehouse, cursor="1")  # the inbox holds nothing past seq 1
    assert not result.run_requests and result.skip_message
    assert built == []  # no client, so no request


def test_the_sensor_is_in_the_definitions_only_with_webhooks_enabled():
    from siro_assets.pipeline.build import build_pipeline_definitions

    def sensors(settings):
        return {s.name for s in build_pipeline_definitions(settings, {}).sensors}

    assert "recordings_webhook_sensor" in sensors(SETTINGS)
    assert "recordings_webhook_sensor" not in sensors(PipelineSettings())
    assert SENSOR.minimum_interval_seconds == 1  # every daemon loop (~5 s)


def test_webhooks_slow_the_polling_sensor_unless_its_interval_is_explicit():
    from siro_assets.component import SiroComponent

    def interval(**attrs):
        return SiroComponent(**attrs).pipeline_settings().sensor.interval_seconds

    assert interval() == 60
    assert interval(webhooks={"enabled": True}) == 600
    assert interval(webhooks={"enabled": True}, sensor={"interval_seconds": 30}) == 30


def test_a_recording_notified_before_it_exists_lands_once_it_appears(warehouse):
    rid, created, linked = find_late_link()
    now = [datetime(2026, 1, 1, tzinfo=timezone.utc)]
    sensor = build_webhook_sensor(SETTINGS, build_recordings_job(SETTINGS), clock=lambda: now[0])
    _notify(warehouse, rid, "msg_1")
    # The API does not serve it yet: no run, but the id stays in the cursor.
    early = _tick(simulated_siro(created - timedelta(minutes=5)), warehouse, sensor=sensor)
    assert not early.run_requests and rid in early.cursor
    # Before its backoff has passed, a tick does not ask again.
    siro = simulated_siro(created + timedelta(minutes=5))
    now[0] += timedelta(seconds=10)
    assert not _tick(siro, warehouse, early.cursor, sensor=sensor).run_requests
    now[0] += timedelta(seconds=30)
    later = _tick(siro, warehouse, early.cursor, sensor=sensor)
    (request,) = later.run_requests
    assert request.tags[RECORDING_IDS_TAG] == rid and later.cursor == "1"

    from siro_assets.definitions import defs
    run = defs.resolve_job_def(SETTINGS.recordings_job_name).execute_in_process(
        tags=dict(request.tags), resources={"siro_api": siro, "siro_warehouse": warehouse})
    assert run.success
    assert query(warehouse, "SELECT count(*) FROM siro.recordings WHERE id = ?", [rid]) == [(1,)]
    # Once landed, it is not retried.
    assert not _tick(siro, warehouse, later.cursor, sensor=sensor).run_requests


def test_the_sensor_drains_only_its_own_endpoints_events(warehouse, monkeypatch):
    # Another instance's endpoint shares the inbox file: its events are not this sensor's.
    siro = simulated_siro()
    _notify(warehouse, "rec_west", "msg_1", endpoint="west")
    built = []
    for name in ("client", "async_client"):
        original = getattr(type(siro), name)
        monkeypatch.setattr(type(siro), name, lambda self, _o=original, **kw: built.append(1) or _o(self, **kw))
    result = _tick(siro, warehouse)
    assert not result.run_requests and result.skip_message and built == []


def test_while_a_webhook_run_waits_to_start_new_events_wait_for_the_next_run(warehouse):
    # Backpressure: a stream of events must not become one run process per tick.
    from dagster import DagsterRun, DagsterRunStatus

    from siro_assets.pipeline.automation.webhook_sensor import WEBHOOK_RUN_TAG

    rid, _, linked = find_late_link()
    siro = simulated_siro(linked + timedelta(seconds=30))
    _notify(warehouse, rid, "msg_1")
    with DagsterInstance.ephemeral() as instance:
        def tick(cursor):
            context = build_sensor_context(instance=instance, cursor=cursor,
                                           resources={"siro_api": siro, "siro_warehouse": warehouse})
            return SENSOR.evaluate_tick(context)

        # NOT_STARTED: waiting like a QUEUED run, which would need a code-server origin.
        waiting = DagsterRun(job_name=SETTINGS.recordings_job_name, run_id="waiting-run",
                             status=DagsterRunStatus.NOT_STARTED, tags={WEBHOOK_RUN_TAG: "siro", RECORDING_IDS_TAG: "rec_a"})
        instance.add_run(waiting)
        held = tick(None)
        assert not held.run_requests and "waiting to start" in held.skip_message
        assert held.cursor is None  # the events stay past the cursor

        # Another instance's waiting run, or a run of ours that started, holds nothing back.
        instance.add_run(DagsterRun(job_name=SETTINGS.recordings_job_name, run_id="other-prefix",
                                    status=DagsterRunStatus.NOT_STARTED, tags={WEBHOOK_RUN_TAG: "west"}))
        instance.delete_run("waiting-run")
        instance.add_run(DagsterRun(job_name=SETTINGS.recordings_job_name, run_id="started-run",
                                    status=DagsterRunStatus.STARTED, tags={WEBHOOK_RUN_TAG: "siro"}))
        (request,) = tick(None).run_requests
        assert request.tags[RECORDING_IDS_TAG] == rid and request.tags[WEBHOOK_RUN_TAG] == "siro"


def test_with_checks_all_a_webhook_run_is_the_whole_job(warehouse):
    rid, created, linked = find_late_link()
    settings = PipelineSettings(webhooks=WebhookOptions(enabled=True, checks="all"))
    _notify(warehouse, rid, "msg_1")
    (request,) = _tick(simulated_siro(linked + timedelta(seconds=30)), warehouse,
                       sensor=build_webhook_sensor(settings, build_recordings_job(settings))).run_requests
    assert request.asset_selection is None and request.asset_check_keys is None


def test_the_jobs_named_assets_are_the_raw_table_and_everything_downstream_of_it():
    from dagster import AssetSelection

    from siro_assets.pipeline.build import build_pipeline_definitions

    for settings in (SETTINGS, PipelineSettings(key_prefix="west")):
        assets = build_pipeline_definitions(settings, {}).assets
        downstream = AssetSelection.assets(settings.key("recordings")).downstream().resolve(assets)
        assert pipeline_selection(settings).resolve(assets) == set(pipeline_asset_keys(settings)) == downstream
