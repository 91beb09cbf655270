"""The webhook sensor: one changes-only run for the recordings the inbox was notified of."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dagster import DefaultSensorStatus, RunRequest, SensorDefinition, SensorEvaluationContext, SkipReason, sensor

from ..partitions import partition_key
from ..ingest.refresh import RECORDING_IDS_TAG
from ..settings import PipelineSettings
from .dagster_gaps import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from ...api_client.errors import SiroNotFoundError
from ...webhooks.drain import drain
from ...webhooks.inbox import SqliteInbox, inbox_path_for

WEBHOOK_SENSOR_NAME = "recordings_webhook_sensor"


def build_webhook_sensor(settings: PipelineSettings, job: Any) -> SensorDefinition:
    """One instance's webhook sensor, draining its own inbox into runs of `job`."""
    api_key, warehouse_key = settings.api_resource_key, settings.warehouse_resource_key
    options = settings.webhooks

    @sensor(
        name=settings.scoped(WEBHOOK_SENSOR_NAME),
        job=job,
        minimum_interval_seconds=options.interval_seconds,
        default_status=DefaultSensorStatus.RUNNING if options.enabled else DefaultSensorStatus.STOPPED,
        description="Drains the webhook inbox past its cursor and requests one run fetching "
        "exactly the notified recordings. See docs/WEBHOOKS.md.",
        required_resource_keys={api_key, warehouse_key},
    )
    def recordings_webhook_sensor(context: SensorEvaluationContext):
        """Request one changes-only run for the recordings notified since the cursor."""
        warehouse = getattr(context.resources, warehouse_key)
        path = Path(options.inbox_path) if options.inbox_path else inbox_path_for(warehouse.database)
        if not path.exists():
            return SkipReason("No webhook inbox yet.")
        with SqliteInbox(path) as inbox:
            drained = drain(inbox, int(context.cursor or 0), options.max_ids_per_run)
        if drained is None:
            # An idle tick: no API request, no run.
            return SkipReason("No webhook events past the cursor.")
        # The run's partitions are the recordings' createdAt days, which the events do
        # not carry: one light request per id (no enrichment) learns them.
        days = set()
        with getattr(context.resources, api_key).client() as client:
            for recording_id in drained.ids:
                try:
                    days.add(client.get_recording(recording_id).created_at.date())
                except SiroNotFoundError:
                    context.log.info(f"Recording {recording_id} not found yet; left to the updatedAt sensor.")
        context.update_cursor(str(drained.last_seq))
        if not days:
            return SkipReason("No notified recording exists yet.")
        return RunRequest(
            run_key=drained.run_key,
            tags={
                RECORDING_IDS_TAG: ",".join(drained.ids),
                PARTITION_RANGE_START_TAG: partition_key(min(days)),
                PARTITION_RANGE_END_TAG: partition_key(max(days)),
            },
        )

    return recordings_webhook_sensor
