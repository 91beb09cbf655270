"""A requested day stays pending until a run covering it succeeds.

The sensor is evaluated tick by tick against one Dagster instance, and every run it
requests really executes (in process, on that instance, with the request's tags), so
the sensor reads back the outcome of its own runs the way it does in production.
Simulated time moves in steps; the sensor's wall clock is moved with it.
"""

from __future__ import annotations

import sys
from datetime import date, datetime, timedelta, timezone

import pytest
from dagster import DagsterInstance, DagsterRunStatus, Definitions, build_sensor_context, define_asset_job

from siro_assets.simulator.resource import SimulatedSiroApiResource
from siro_assets.pipeline.automation import sensors
from siro_assets.changes.change_tracking import SensorCursor
from siro_assets.changes.tick_clock import TickClock
from siro_assets.pipeline.automation.dagster_gaps import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from siro_assets.pipeline.automation.jobs import STEP_RETRY_POLICY
from siro_assets.pipeline.automation.run_status import REQUEST_TAG
from siro_assets.pipeline.resources import SiroApiResource, WarehouseResource
from siro_assets.pipeline.writebacks.resource import CrmWritebackResource
from tests.integration.test_sensor import WORLD, _definitions, days_of, find_late_link, query
from tests.default_instance import recordings_pipeline_selection, recordings_updated_sensor
from tests.support import sensor_with, simulated_siro

TICK = timedelta(minutes=5)


class FakeWallClock:
    """The sensor's wall clock, moved by the test in step with simulated time."""

    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.now


SENSOR = recordings_updated_sensor


@pytest.fixture
def wall(monkeypatch) -> FakeWallClock:
    """Every `tick` of the test runs the shipped sensor on this wall clock."""
    clock = FakeWallClock()
    monkeypatch.setattr(sys.modules[__name__], "SENSOR", sensor_with(clock=TickClock(wall=clock)))
    return clock


def _job_without_step_pauses():
    """The sensor's job as defined, minus the 20 s / 40 s pauses of its step retries
    (real sleeps); the run-level behaviour under test does not depend on them."""
    from siro_assets.definitions import defs

    job = define_asset_job("siro_recordings_job", selection=recordings_pipeline_selection)
    # Placeholder resources: every execution passes its own.
    resources = {"siro_api": SimulatedSiroApiResource(), "siro_warehouse": WarehouseResource(database="unused"),
                 "siro_crm": CrmWritebackResource()}
    return Definitions(assets=defs.assets, asset_checks=defs.asset_checks, jobs=[job],
                       resources=resources).resolve_job_def(job.name)


def tick(instance, siro: SiroApiResource, cursor: str | None, tmp_path):
    context = build_sensor_context(instance=instance, cursor=cursor, resources={"siro_api": siro},
                                   definitions=_definitions(siro, tmp_path))
    return SENSOR.evaluate_tick(context)


def launch(job, instance, run_request, siro: SiroApiResource, warehouse: WarehouseResource):
    """Run a sensor run request in process on `instance`, keeping the sensor's own tags
    (the daemon adds `dagster/run_key` and `dagster/sensor_name`; the sensor reads its runs back by
    `siro/request`)."""
    tags = {k: v for k, v in run_request.tags.items() if not k.startswith("dagster/")
            or k in (PARTITION_RANGE_START_TAG, PARTITION_RANGE_END_TAG)}
    ranged = PARTITION_RANGE_START_TAG in tags
    return job.execute_in_process(
        partition_key=None if ranged else run_request.partition_key, tags=tags, instance=instance,
        resources={"siro_api": siro, "siro_warehouse": warehouse, "siro_crm": CrmWritebackResource()}, raise_on_error=False,
    )


def test_the_job_pauses_between_step_retries():
    from dagster import Backoff

    from siro_assets.definitions import defs

    policy = defs.resolve_job_def("siro_recordings_job").op_retry_policy
    # Dagster's run retries start again at once; these pauses are the backoff inside a run.
    assert policy == STEP_RETRY_POLICY
    assert policy.max_retries >= 2 and policy.delay >= 10 and policy.backoff is Backoff.EXPONENTIAL


def test_changes_reach_the_tables_after_an_hour_long_outage_without_operator_action(tmp_path, warehouse, wall):
    rid, created, linked = find_late_link()
    day = created.date()
    job = _job_without_step_pauses()
    first = linked + timedelta(seconds=30)  # the first tick that lists the link
    outage = (first + timedelta(seconds=1), first + timedelta(minutes=61))

    def siro_at(t: datetime) -> SiroApiResource:
        down = outage[0] <= t < outage[1]
        # While Siro is down every request of every client answers 503.
        return simulated_siro(t, simulator_fault_script=["503"] * 200 if down else [], max_attempts=3)

    with DagsterInstance.ephemeral() as instance:
        cursor = tick(instance, siro_at(linked - timedelta(minutes=1)), None, tmp_path).cursor
        failed = succeeded = 0
        converged_at = None
        for k in range(40):
            t = first + k * TICK
            wall.now += TICK
            result = tick(instance, siro_at(t), cursor, tmp_path)
            cursor = result.cursor
            for request in result.run_requests or []:
                run = launch(job, instance, request, siro_at(t + timedelta(seconds=1)), warehouse)
                failed += not run.success
                succeeded += run.success
            if k == 0:
                assert any(str(day) in days_of(rr) for rr in result.run_requests)
            if t < outage[1]:
                assert str(day) in {d.isoformat() for d in SensorCursor.from_json(cursor).pending}
            elif not SensorCursor.from_json(cursor).pending:
                converged_at = t
                break

    assert failed >= 3  # the outage really failed runs, more than Dagster's run retries would cover
    assert converged_at is not None and converged_at - outage[1] <= timedelta(minutes=35)
    # Re-requests back off: an hour of outage cost a handful of runs, not one per tick.
    assert failed <= 9
    (updated,) = query(warehouse, "SELECT updated_at FROM siro.recordings WHERE id = ?", [rid])[0]
    assert updated.replace(tzinfo=timezone.utc) == linked
    assert query(warehouse, "SELECT is_linked FROM siro.recording_crm WHERE recording_id = ?", [rid]) == [(True,)]


def queue(job, instance, run_request, day: date):
    """Create the run of a request without starting it, like one the daemon left in the queue
    because the pool is busy (a QUEUED run needs a code-server origin; NOT_STARTED is the
    same "created, not fetching yet" for the sensor)."""
    tags = {k: v for k, v in run_request.tags.items() if not k.startswith("dagster/")}
    return instance.create_run_for_job(job_def=job, run_config={}, status=DagsterRunStatus.NOT_STARTED,
                                       tags={**tags, "dagster/partition": str(day)})


def _two_changes_to_one_day() -> tuple[date, datetime, datetime]:
    """A creation day with two changes at least 10 minutes apart and nothing on that day
    in between: (day, first change, second change)."""
    for day in [date(2026, 2, 16) + timedelta(days=k) for k in range(14)]:
        stamps = sorted({t for r in WORLD.day(day) for t, _ in WORLD.timeline(r.id)})
        for a, b in zip(stamps, stamps[1:]):
            if timedelta(minutes=10) <= b - a <= timedelta(hours=2) and a.date() >= day + timedelta(days=1):
                return day, a, b
    raise AssertionError("no day with two well separated changes")


def test_no_second_run_for_a_day_whose_run_is_still_queued(tmp_path, wall):
    day, t1, t2 = _two_changes_to_one_day()
    job = _job_without_step_pauses()
    with DagsterInstance.ephemeral() as instance:
        cursor = tick(instance, simulated_siro(t1 - timedelta(minutes=1)), None, tmp_path).cursor
        first = tick(instance, simulated_siro(t1 + timedelta(seconds=30)), cursor, tmp_path)
        (request,) = [rr for rr in first.run_requests if str(day) in days_of(rr)]
        # The run queues behind a long backfill in the warehouse pool: it exists, not started.
        queued = queue(job, instance, request, day)
        wall.now += timedelta(minutes=30)
        second = tick(instance, simulated_siro(t2 + timedelta(seconds=30)), first.cursor, tmp_path)
        assert str(day) not in {d for rr in second.run_requests or [] for d in days_of(rr)}
        # The queued run fetches the day when it starts, so it covers the new change; the
        # day stays pending on it.
        assert SensorCursor.from_json(second.cursor).pending[day].key == request.tags[REQUEST_TAG]

        # The queued run fails after all: the day is requested again, under a new key.
        instance.report_run_failed(instance.get_run_by_id(queued.run_id))
        wall.now += timedelta(minutes=5)
        third = tick(instance, simulated_siro(t2 + timedelta(minutes=1)), second.cursor, tmp_path)
        (again,) = [rr for rr in third.run_requests if str(day) in days_of(rr)]
        assert again.run_key != request.run_key and str(day) in again.tags["siro/retried_days"]
        queue(job, instance, again, day)
        # However long that one waits in the queue, no third run joins it.
        for hours in range(1, 4):
            wall.now += timedelta(hours=1)
            later = tick(instance, simulated_siro(t2 + timedelta(minutes=1 + hours)), third.cursor, tmp_path)
            assert str(day) not in {d for rr in later.run_requests or [] for d in days_of(rr)}
