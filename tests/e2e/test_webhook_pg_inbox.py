"""The inbox in PostgreSQL: the receiver process stores into it, the webhook sensor drains it.

A throwaway PostgreSQL cluster (tests/webhook_pg.py); the shipped project selects it by
SIRO_WEBHOOK_INBOX_DSN (its defs.yaml names that variable when it is set), so neither
the receiver nor the sensor touches the SQLite file beside the warehouse.
"""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from dagster import DagsterInstance, build_sensor_context

from siro_assets.pipeline.automation.jobs import build_recordings_job
from siro_assets.pipeline.automation.webhook_sensor import build_webhook_sensor
from siro_assets.pipeline.ingest.refresh import RECORDING_IDS_TAG
from siro_assets.pipeline.settings import PipelineSettings, WebhookOptions
from siro_assets.webhooks.inbox import inbox_path_for
from siro_assets.webhooks.pg_inbox import PostgresInbox
from tests.e2e.test_webhook_receiver import SECRET, Receiver, signed
from tests.integration.test_sensor import find_late_link
from tests.support import simulated_siro
from tests.webhook_pg import webhook_pg_dsn  # noqa: F401 - fixture

pytestmark = pytest.mark.e2e

DSN_ENV = "SIRO_WEBHOOK_INBOX_DSN"
SETTINGS = PipelineSettings(webhooks=WebhookOptions(enabled=True, inbox_dsn_env=DSN_ENV))
SENSOR = build_webhook_sensor(SETTINGS, build_recordings_job(SETTINGS))


def _event(rid: str) -> dict:
    return {"recordingId": rid, "siroUserId": "usr_1", "recordingProcessed": True, "recordingLinked": True,
            "eventType": "integrations.recordingLinked"}


def _tick(siro, warehouse, cursor=None):
    with DagsterInstance.ephemeral() as instance:
        context = build_sensor_context(instance=instance, cursor=cursor,
                                       resources={"siro_api": siro, "siro_warehouse": warehouse})
        return SENSOR.evaluate_tick(context)


def test_the_receiver_stores_into_postgresql_and_the_sensor_drains_it(tmp_path, webhook_pg_dsn, warehouse,
                                                                     monkeypatch):
    rid, _created, linked = find_late_link()
    receiver = Receiver(tmp_path, args=("--inbox-capacity", "3"), env={DSN_ENV: webhook_pg_dsn}).wait_ready()
    try:
        with httpx.Client(timeout=10) as client:
            def post(n: int, msg_id: str) -> httpx.Response:
                body, headers = signed(_event(rid), msg_id, secret=SECRET)
                return client.post(f"{receiver.url}/webhooks/siro", content=body, headers=headers)

            assert post(1, "msg_1").json() == {"status": "stored"}
            assert post(1, "msg_1").json() == {"status": "duplicate"}  # dedupe by svix-id
            assert post(2, "msg_2").status_code == 200 and post(3, "msg_3").status_code == 200
            full = post(4, "msg_4")
            assert full.status_code == 503 and full.headers["retry-after"]  # the bound holds: retry later
            assert post(1, "msg_1").json() == {"status": "duplicate"}  # still known when full
    finally:
        receiver.stop()
    assert "inbox PostgreSQL (DSN from SIRO_WEBHOOK_INBOX_DSN)" in receiver.log()
    password = webhook_pg_dsn.split("password=")[1].split()[0]
    assert password not in receiver.log() and SECRET.removeprefix("whsec_") not in receiver.log()
    assert not inbox_path_for(receiver.warehouse).exists(), "no SQLite inbox beside the warehouse"
    with PostgresInbox(webhook_pg_dsn) as inbox:
        assert [e.message_id for e in inbox.read_after(0, 10)] == ["msg_1", "msg_2", "msg_3"]

    monkeypatch.setenv(DSN_ENV, webhook_pg_dsn)
    siro = simulated_siro(linked + timedelta(seconds=30))
    result = _tick(siro, warehouse)
    (request,) = result.run_requests
    assert request.tags[RECORDING_IDS_TAG] == rid and request.run_key == "webhooks:1-3"
    assert result.cursor == "3"
    assert not _tick(siro, warehouse, result.cursor).run_requests  # drained past its cursor


def test_a_sensor_whose_dsn_variable_is_unset_fails_naming_it(warehouse, monkeypatch):
    monkeypatch.delenv(DSN_ENV, raising=False)
    with pytest.raises(Exception, match=f"set {DSN_ENV}"):
        _tick(simulated_siro(), warehouse)
