"""A webhook-driven run fetches only the recordings it names, so the `updatedAt` sensor
relies on it for no day: neither while it is queued nor once it succeeded."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from dagster import DagsterInstance, DagsterRunStatus

from siro_assets.changes.change_tracking import SensorCursor
from siro_assets.changes.pending_runs import MISSING_RUN_GRACE
from siro_assets.changes.sensor_cursor import PendingRequest
from siro_assets.pipeline.automation.dagster_gaps import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from siro_assets.pipeline.automation.run_status import REQUEST_TAG
from siro_assets.pipeline.ingest.refresh import RECORDING_IDS_TAG, UPDATED_SINCE_TAG
from siro_assets.api_client.timestamps import parse_ts
from tests.integration.test_sensor import WORLD, days_of, find_late_link
from tests.integration.test_sensor_pending import _job_without_step_pauses, tick, wall  # noqa: F401 (fixture)
from tests.support import simulated_siro


def _webhook_run(job, instance, day, rid, status):
    """A run as the webhook sensor requests it: one named recording, its day as a range.
    Waiting in the queue is NOT_STARTED here: a QUEUED run needs a code-server origin,
    and the sensor reads both as "created, not fetching yet" (`run_status._NOT_STARTED`)."""
    return instance.create_run_for_job(job_def=job, run_config={}, status=status, tags={
        RECORDING_IDS_TAG: rid, PARTITION_RANGE_START_TAG: str(day), PARTITION_RANGE_END_TAG: str(day)})


def _other_recording(day, rid) -> str:
    return next(r.id for r in WORLD.day(day) if r.id != rid)


def test_a_queued_webhook_run_does_not_cover_its_days_other_changes(tmp_path, wall):
    rid, created, linked = find_late_link()
    day = created.date()
    job = _job_without_step_pauses()
    with DagsterInstance.ephemeral() as instance:
        cursor = tick(instance, simulated_siro(linked - timedelta(minutes=1)), None, tmp_path).cursor
        # Another recording of the same day was notified; its run waits in the queue.
        webhook = _webhook_run(job, instance, day, _other_recording(day, rid), DagsterRunStatus.NOT_STARTED)
        wall.now += timedelta(minutes=1)
        result = tick(instance, simulated_siro(linked + timedelta(seconds=30)), cursor, tmp_path)
        (request,) = [rr for rr in result.run_requests or [] if str(day) in days_of(rr)]
        # The sensor's own run lists the day's changes from the link on, so it fetches it.
        assert parse_ts(request.tags[UPDATED_SINCE_TAG]) <= linked
        pending = SensorCursor.from_json(result.cursor).pending[day]
        assert pending.key == request.tags[REQUEST_TAG] != f"run:{webhook.run_id}"


def test_a_succeeded_webhook_run_does_not_settle_a_day_left_to_it(tmp_path, wall):
    # A cursor written before the fix may have left a day to a webhook run ("run:<id>").
    rid, created, linked = find_late_link()
    day = created.date()
    job = _job_without_step_pauses()
    with DagsterInstance.ephemeral() as instance:
        first = tick(instance, simulated_siro(linked - timedelta(minutes=1)), None, tmp_path).cursor
        webhook = _webhook_run(job, instance, day, _other_recording(day, rid), DagsterRunStatus.SUCCESS)
        owed = PendingRequest(f"run:{webhook.run_id}", wall.now, 1, since=linked)
        cursor = replace(SensorCursor.from_json(first), pending={day: owed}).to_json()
        wall.now += timedelta(minutes=1)
        later = tick(instance, simulated_siro(linked - timedelta(seconds=30)), cursor, tmp_path)
        assert SensorCursor.from_json(later.cursor).pending[day].key == owed.key  # kept, not forgotten
        wall.now += MISSING_RUN_GRACE
        due = tick(instance, simulated_siro(linked - timedelta(seconds=20)), later.cursor, tmp_path)
        (request,) = [rr for rr in due.run_requests or [] if str(day) in days_of(rr)]
        assert SensorCursor.from_json(due.cursor).pending[day].key == request.tags[REQUEST_TAG]
