"""The webhook sensor: one changes-only run for the recordings the inbox was notified of."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import date, datetime, timezone
from typing import Any

from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from ...changes.change_tracking import group_days
from ..partitions import partition_key
from ..ingest.refresh import RECORDING_IDS_TAG
from ..settings import PipelineSettings
from ..checks import blocking_check_keys
from ..writebacks.checks import writeback_check_key
from .jobs import pipeline_asset_keys
from .dagster_gaps import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from ...api_client.async_client import fetch_each
from ...webhooks.drain import drain
from ...webhooks.location import InboxLocation
from ...webhooks.retry import WebhookCursor, after_attempt

WEBHOOK_SENSOR_NAME = "recordings_webhook_sensor"
#: On every run the webhook sensor requests (value: the instance's key prefix).
WEBHOOK_RUN_TAG = "siro/webhook_run"
# A run in these has not started its process, so it has not fetched yet.
WAITING_TO_START = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING]


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


async def _created_days(api: Any, ids: Sequence[str]) -> list[date | None]:
    """Each id's `createdAt` day (UTC), None where the API does not serve it yet."""
    async with api.async_client() as client:
        recordings = await fetch_each(ids, client.get_recording)
    return [r.created_at.astimezone(timezone.utc).date() if r is not None else None for r in recordings]


def _run_selection(settings: PipelineSettings) -> dict[str, Any]:
    """What a webhook run executes beyond the default (the whole job, every check).

    With `checks: essential`, every asset but only the checks a user must see per run:
    each check is a step of its own in the one-slot warehouse pool, so the other ~15 would
    add seconds to every run, and a steady stream of events would make runs queue behind
    one another. The polling, nightly and audit runs still execute them all.
    """
    if settings.webhooks.checks == "all":
        return {}
    return {
        "asset_selection": pipeline_asset_keys(settings),
        "asset_check_keys": [*blocking_check_keys(settings), writeback_check_key(settings)],
    }


def build_webhook_sensor(
    settings: PipelineSettings, job: Any, *, clock: Callable[[], datetime] = _utc_now
) -> SensorDefinition:
    """One instance's webhook sensor, draining its own inbox into runs of `job`.

    Ids the API does not serve yet are retried with backoff from `clock` (see webhooks/retry.py).
    """
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
        # The same choice the receiver makes (webhooks/location.py): a PostgreSQL table
        # when `inbox_dsn_env` is named (its variable unset fails the tick, naming it),
        # else the SQLite file beside the warehouse.
        location = InboxLocation.for_instance(inbox_path=options.inbox_path, inbox_dsn_env=options.inbox_dsn_env,
                                              warehouse_path=warehouse.database)
        if not location.is_postgres and not location.exists():
            # Named, so a receiver writing elsewhere (it prints its inbox at start) shows.
            return SkipReason(f"No webhook inbox yet at {location.describe()}.")
        cursor = WebhookCursor.parse(context.cursor)
        now = clock()
        with location.open() as inbox:
            if cursor.seq:
                # The cursor this tick starts from is committed: the events up to it are
                # drained for good, and a full inbox may drop them first.
                inbox.mark_consumed(settings.key_prefix, cursor.seq)
            drained = drain(inbox, cursor.seq, options.max_ids_per_run, endpoint=settings.key_prefix)
        due = cursor.due(now)
        if drained is None and not due:
            # An idle tick (or retries not due yet): no API request, no run.
            return SkipReason("No webhook events past the cursor.")
        waiting = context.instance.get_runs(
            RunsFilter(job_name=job.name, statuses=WAITING_TO_START, tags={WEBHOOK_RUN_TAG: settings.key_prefix}),
            limit=options.max_waiting_runs,
        )
        if len(waiting) >= options.max_waiting_runs:
            # Backpressure: each run costs a process start (seconds of CPU). While earlier
            # ones still wait for theirs, these ids stay past the cursor and go with the
            # next run, so a burst of events becomes a few runs, not one per tick.
            return SkipReason(f"{len(waiting)} webhook run(s) still waiting to start; these events go with the next.")
        ids = list(dict.fromkeys((drained.ids if drained else ()) + due))
        # The run's partitions are the recordings' createdAt days, which the events do
        # not carry: one light request per id (no enrichment) learns them.
        # Concurrently: one after another, a few dozen ids would cost seconds of latency.
        created = asyncio.run(_created_days(getattr(context.resources, api_key), ids))
        day_of = {rid: day for rid, day in zip(ids, created) if day is not None}
        found = [rid for rid in ids if rid in day_of]
        missing = [rid for rid in ids if rid not in day_of]
        seq = drained.last_seq if drained else cursor.seq
        next_cursor, given_up = after_attempt(cursor, seq, missing, found, now)
        if missing:
            context.log.info(f"{len(missing)} notified recording(s) not found yet; retried with backoff.")
        for recording_id in given_up:
            context.log.info(f"Recording {recording_id} still not found; given up, left to the updatedAt sensor.")
        context.update_cursor(next_cursor.serialize())
        if not found:
            return SkipReason("No notified recording exists yet.")
        # A run rebuilds every day of its range, so days apart get runs of their own (at
        # most the polling sensor's runs per tick; the closest are merged past that).
        ranges = group_days(day_of.values(), settings.sensor.max_runs_per_tick)
        # A drained range is unique; a retries-only run is unique by its tick's time.
        key = drained.run_key if drained else f"webhooks:{seq}:retry:{now.isoformat()}"
        selection = _run_selection(settings)
        requests = []
        for first, last in ranges:
            in_range = [rid for rid in found if first <= day_of[rid] <= last]
            requests.append(RunRequest(
                run_key=key if len(ranges) == 1 else f"{key}:{partition_key(first)}",
                tags={
                    WEBHOOK_RUN_TAG: settings.key_prefix,
                    RECORDING_IDS_TAG: ",".join(in_range),
                    PARTITION_RANGE_START_TAG: partition_key(first),
                    PARTITION_RANGE_END_TAG: partition_key(last),
                },
                **selection,
            ))
        return requests

    return recordings_webhook_sensor
