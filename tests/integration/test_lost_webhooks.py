"""Lost webhooks: the simulator drops some, polling catches them, the tables equal the truth.

In process and without sleeps: the simulator's sender posts through the real receiver app
(Starlette's test client) into a real SQLite inbox; the webhook sensor and the `updatedAt`
sensor are evaluated with `build_sensor_context`, and their run requests executed with
`execute_in_process`. The world is a pure function of its clock, so "time passes" is a
later `simulator_now`.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from dagster import DagsterInstance, build_sensor_context
from starlette.testclient import TestClient

from siro_assets.api_client.timestamps import format_ts
from siro_assets.changes.change_tracking import SensorCursor
from siro_assets.pipeline.automation.jobs import build_recordings_job
from siro_assets.pipeline.automation.webhook_sensor import build_webhook_sensor
from siro_assets.pipeline.ingest.refresh import RECORDING_IDS_TAG
from siro_assets.pipeline.settings import PipelineSettings, WebhookOptions
from siro_assets.simulator import FixedClock
from siro_assets.simulator.webhook_sender import DeliveryFaults, WebhookSender
from siro_assets.webhooks.app import Endpoint, create_app
from siro_assets.webhooks.inbox import SqliteInbox, inbox_path_for
from siro_assets.webhooks.verify import StandardWebhooksVerifier
from tests.integration.test_sensor import WORLD, query
from tests.support import partition_range_tags, sensor_with, simulated_siro
from tests.unit.test_webhook_verify import SECRET

T0 = datetime(2026, 3, 10, 0, 0, tzinfo=timezone.utc)  # the days are loaded as of here
T1 = T0 + timedelta(hours=12)  # the events in (T0, T1] are sent, some dropped
FIRST_DAY = (T0 - timedelta(days=6)).date()  # events land within 5 days of creation
SETTINGS = PipelineSettings(webhooks=WebhookOptions(enabled=True))
WEBHOOK_SENSOR = build_webhook_sensor(SETTINGS, build_recordings_job(SETTINGS))
POLLING_SENSOR = sensor_with()


class _Ticker:
    """The sender's monotonic clock, moved by the test."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _send_with_drops(warehouse) -> WebhookSender:
    """Every event in (T0, T1] through the sender (30% dropped) and the receiver into the inbox."""
    inbox = SqliteInbox(inbox_path_for(warehouse.database))
    app = create_app([Endpoint("siro", StandardWebhooksVerifier(SECRET))], inbox)
    ticker = _Ticker()
    sender = WebhookSender("http://testserver/webhooks/siro", SECRET, WORLD, FixedClock(T1), since=T0,
                           faults=DeliveryFaults(seed=1, drop_rate=0.3), retry_schedule=(1.0,),
                           http=TestClient(app), monotonic=ticker)
    try:
        while True:
            sender.poll()
            if not sender.pending():
                break
            ticker.t += 0.5
    finally:
        sender.close()
        inbox.close()
    return sender


def _tick(sensor, cursor, siro, warehouse):
    from siro_assets.definitions import defs

    with DagsterInstance.ephemeral() as instance:
        context = build_sensor_context(instance=instance, cursor=cursor, definitions=defs,
                                       resources={"siro_api": siro, "siro_warehouse": warehouse})
        return sensor.evaluate_tick(context)


def _execute(tags, siro, warehouse, partition_key=None):
    from siro_assets.definitions import defs

    # The tags a daemon-launched run would read; run-key and sensor tags mean nothing in process.
    tags = {k: v for k, v in tags.items() if k.startswith("siro/") or "partition_range" in k}
    result = defs.resolve_job_def(SETTINGS.recordings_job_name).execute_in_process(
        tags=tags, partition_key=None if any("partition_range" in k for k in tags) else partition_key,
        resources={"siro_api": siro, "siro_warehouse": warehouse})
    assert result.success
    return result


def _truth() -> dict[str, str]:
    """What the API lists at T1 for the loaded days: id -> updatedAt."""
    return {r["id"]: r["updatedAt"] for r in WORLD.recordings(T1, created_from=datetime.combine(FIRST_DAY, T0.timetz()))
            if r["createdAt"][:10] <= T1.date().isoformat()}


def _table(warehouse) -> dict[str, str]:
    return {rid: format_ts(u.astimezone(timezone.utc)) for rid, u in query(warehouse, "SELECT id, updated_at FROM siro.recordings")}


def test_webhooks_dropped_by_the_sender_arrive_through_polling(warehouse):
    _execute(partition_range_tags(FIRST_DAY.isoformat(), T0.date().isoformat()), simulated_siro(T0), warehouse)
    sender = _send_with_drops(warehouse)
    with SqliteInbox(inbox_path_for(warehouse.database)) as inbox:
        notified = {e.recording_id for e in inbox.read_after(0, 10_000)}
    dropped_only = {m.recording_id for m in sender.dropped} - notified
    assert sender.stats["dropped"] >= 3 and len(dropped_only) >= 2, (sender.stats, dropped_only)
    print(f"{sender.stats['messages']} messages, {sender.stats['dropped']} dropped; {len(notified)} notified, "
          f"{len(dropped_only)} recording(s) with every webhook dropped: {sorted(dropped_only)}")

    siro = simulated_siro(T1)
    # The fast path: the webhook sensor drains the inbox into runs of exactly the notified ids.
    cursor, fetched = None, set()
    while (result := _tick(WEBHOOK_SENSOR, cursor, siro, warehouse)).run_requests:
        for request in result.run_requests:
            fetched |= set(request.tags[RECORDING_IDS_TAG].split(","))
            _execute(request.tags, siro, warehouse)
        cursor = result.cursor
    assert fetched == notified and not fetched & dropped_only
    truth, table = _truth(), _table(warehouse)
    assert {rid for rid in notified if rid in truth} <= {rid for rid in truth if table.get(rid) == truth[rid]}
    stale = {rid for rid in dropped_only if table.get(rid) != truth.get(rid)}
    assert stale == dropped_only, "a dropped webhook's change must not be in the tables yet"

    # The safety net: the updatedAt sensor, ticking from T0, brings every change in.
    polled = _tick(POLLING_SENSOR, SensorCursor(watermark=T0).to_json(), siro, warehouse)
    assert polled.run_requests
    for request in polled.run_requests:
        assert RECORDING_IDS_TAG not in request.tags  # a changes-only run by updatedAt, not by id
        _execute(request.tags, siro, warehouse, partition_key=request.partition_key)
    table = _table(warehouse)
    assert table == truth, {rid: (table.get(rid), truth.get(rid)) for rid in set(table) ^ set(truth) or
                            {r for r in truth if table.get(r) != truth[r]}}
    crm = dict(query(warehouse, "SELECT recording_id, is_linked FROM siro.recording_crm"))
    for rid in dropped_only:
        assert crm[rid] is (WORLD.recording(rid, T1)["crm"] is not None), rid
