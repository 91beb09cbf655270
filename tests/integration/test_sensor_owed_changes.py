"""A pending day keeps the oldest change it owes, whatever runs its day gets meanwhile.

Two paths used to lose a change the sensor had seen (issue 16, item 3):

- A: a newer change on a day whose run failed (or is still running or about to be
  retried) got a changes-only run from the newer change's `updatedAt`, which replaced the
  failed request in `pending`; when it succeeded the day was done, and the older change
  was never fetched.
- B: a day whose run sat queued with `siro/updated_since = T0` was left to that run when
  the lookback found a change on it stamped before T0; the queued run never lists it.

Each test drives the real sensor on an ephemeral Dagster instance, with real run
records (their statuses set as the scenario needs) and an injected wall clock, executes
the runs it requests against the in-process simulator, and checks the warehouse.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from dagster import DagsterInstance, DagsterRunStatus

from siro_assets.api_client.timestamps import format_ts, parse_ts
from siro_assets.simulator.clock import to_ms
from siro_assets.changes.change_tracking import SensorCursor
from siro_assets.pipeline.automation.dagster_gaps import WILL_RETRY_TAG
from siro_assets.pipeline.ingest.refresh import UPDATED_SINCE_TAG
from siro_assets.simulator import SimulatorApi
from tests.integration.test_sensor import SCAN_DAYS, WORLD, days_of, query
from tests.integration.test_sensor_pending import _job_without_step_pauses, launch, queue, tick, wall  # noqa: F401
from tests.support import simulated_siro

SECOND = timedelta(seconds=1)


def _day_events(day: date) -> list[tuple[datetime, str]]:
    return sorted((t, r.id) for r in WORLD.day(day) for t, _ in WORLD.timeline(r.id))


def _still(rid: str, t: datetime, until: datetime) -> bool:
    """`rid` has no event in (t, until]: its listed `updatedAt` stays `t` meanwhile."""
    return all(not (t < u <= until) for u, _ in WORLD.timeline(rid))


def two_changes(min_gap: timedelta, max_gap: timedelta) -> tuple[date, str, datetime, str, datetime]:
    """Two changes to two recordings of one creation day, `min_gap`..`max_gap` apart,
    nothing else on that day in between, and neither recording touched again for a
    quarter of an hour: (day, older id, its updatedAt, newer id, its updatedAt)."""
    for day in SCAN_DAYS:
        events = _day_events(day)
        for (a, x), (b, y) in zip(events, events[1:]):
            quiet = b + timedelta(minutes=15)
            if x != y and min_gap <= b - a <= max_gap and a.date() > day and _still(x, a, quiet) and _still(y, b, quiet):
                return day, x, a, y, b
    raise AssertionError("the simulated world has no such pair of changes")


def pending_of(result) -> dict:
    return dict(SensorCursor.from_json(result.cursor).pending)


def requests_for(result, day: date):
    return [rr for rr in result.run_requests or [] if str(day) in days_of(rr)]


def updated_at(warehouse, rid: str) -> datetime | None:
    rows = query(warehouse, "SELECT updated_at FROM siro.recordings WHERE id = ?", [rid])
    return parse_ts(rows[0][0].isoformat()) if rows else None


def converge(instance, job, warehouse, cursor: str, t: datetime, wall, tmp_path, ticks: int = 6) -> datetime:
    """Tick (each a minute later, wall and API clock alike) and run whatever is requested,
    successfully, until nothing is pending; returns the API time reached."""
    for _ in range(ticks):
        t += timedelta(minutes=1)
        wall.now += timedelta(minutes=1)
        result = tick(instance, simulated_siro(t), cursor, tmp_path)
        cursor = result.cursor
        for request in result.run_requests or []:
            assert launch(job, instance, request, simulated_siro(t + SECOND), warehouse).success
        if not pending_of(result):
            return t
    raise AssertionError(f"still pending after {ticks} ticks: {pending_of(result)}")


# ---- A: a newer change must not replace the request that owes an older one --------------


def _fail(instance, run, *, will_retry: bool = False) -> None:
    if will_retry:
        # What the daemon's run-retry logic stamps on a failed run it is about to retry.
        instance.add_run_tags(run.run_id, {WILL_RETRY_TAG: "true"})
    instance.report_run_failed(instance.get_run_by_id(run.run_id))


@pytest.mark.parametrize("r1_state", ["failed, in its backoff", "failed, Dagster will retry it", "running"])
def test_a_newer_change_does_not_drop_the_change_a_failed_run_owes(tmp_path, warehouse, wall, r1_state):
    day, x, linked, y, changed = two_changes(timedelta(minutes=5), timedelta(minutes=10))
    job = _job_without_step_pauses()
    with DagsterInstance.ephemeral() as instance:
        cursor = tick(instance, simulated_siro(linked - timedelta(minutes=1)), None, tmp_path).cursor
        wall.now += timedelta(minutes=1)
        first = tick(instance, simulated_siro(linked + 30 * SECOND), cursor, tmp_path)
        (r1,) = requests_for(first, day)
        assert parse_ts(r1.tags[UPDATED_SINCE_TAG]) <= linked  # R1 would fetch X's link

        # R1's run: it failed (and the day is inside its 1-minute backoff), failed with a
        # run retry coming, or is still running (it fetched the day before Y changed).
        if r1_state == "running":
            _started(job, instance, r1, day)
        else:
            _fail(instance, queue(job, instance, r1, day), will_retry="retry" in r1_state)
        wall.now += 30 * SECOND
        second = tick(instance, simulated_siro(changed + 30 * SECOND), first.cursor, tmp_path)
        (r2,) = requests_for(second, day)
        assert r2.run_key != r1.run_key

        # R2 succeeds while R1 is still in its backoff (or retrying, or running).
        assert launch(job, instance, r2, simulated_siro(changed + 40 * SECOND), warehouse).success
        converge(instance, job, warehouse, second.cursor, changed + 40 * SECOND, wall, tmp_path)

    # The day is no longer pending, so whatever reached the tables is all it will get.
    assert updated_at(warehouse, y) == changed
    assert updated_at(warehouse, x) == linked, "X's link was never fetched"


def _started(job, instance, run_request, day: date):
    """The run of a request, executing (it fetched its day before the newer change)."""
    tags = {k: v for k, v in run_request.tags.items() if not k.startswith("dagster/")}
    return instance.create_run_for_job(job_def=job, run_config={}, status=DagsterRunStatus.STARTED,
                                       tags={**tags, "dagster/partition": str(day)})


# ---- B: a queued run counts only if it lists the change ---------------------------------


def _hide_until(monkeypatch, rid: str, reveal: datetime) -> None:
    """The simulator lists `rid` only from `reveal` on: a change that becomes visible in
    the API later than a newer one (what the lookback is for)."""
    original = SimulatorApi._matching
    reveal_ms = to_ms(reveal)

    def matching(self, q, snap):
        rows = original(self, q, snap)
        return rows if snap >= reveal_ms else [r for r in rows if r.id != rid]

    monkeypatch.setattr(SimulatorApi, "_matching", matching)


def test_a_queued_run_is_not_relied_on_for_a_change_older_than_its_since(tmp_path, warehouse, wall, monkeypatch):
    day, w, late, x, t0 = two_changes(SECOND, timedelta(seconds=60))
    _hide_until(monkeypatch, w, t0 + timedelta(minutes=1))
    job = _job_without_step_pauses()
    with DagsterInstance.ephemeral() as instance:
        cursor = tick(instance, simulated_siro(t0 - timedelta(minutes=1)), None, tmp_path).cursor
        wall.now += timedelta(minutes=1)
        first = tick(instance, simulated_siro(t0 + 30 * SECOND), cursor, tmp_path)
        (r1,) = requests_for(first, day)
        assert parse_ts(r1.tags[UPDATED_SINCE_TAG]) > late  # W was not visible yet
        # R1 waits in the run queue (the pool is busy): created, not started.
        queued = queue(job, instance, r1, day)

        # The lookback now lists W's change, stamped before R1's since.
        wall.now += timedelta(minutes=1)
        second = tick(instance, simulated_siro(t0 + 90 * SECOND), first.cursor, tmp_path)
        assert (w, late) in SensorCursor.from_json(second.cursor).seen

        # R1 starts and succeeds; the queued record is the one that ran.
        instance.delete_run(queued.run_id)
        assert launch(job, instance, r1, simulated_siro(t0 + 100 * SECOND), warehouse).success
        for request in second.run_requests or []:
            assert launch(job, instance, request, simulated_siro(t0 + 100 * SECOND), warehouse).success
        converge(instance, job, warehouse, second.cursor, t0 + 100 * SECOND, wall, tmp_path)

    assert updated_at(warehouse, x) == t0
    assert updated_at(warehouse, w) == late, "W's change was left to a run that never lists it"


def test_a_queued_run_that_lists_the_change_is_relied_on(tmp_path, wall, monkeypatch):
    """The other side of B: a queued run from before the change still gets no second run."""
    day, w, late, x, t0 = two_changes(SECOND, timedelta(seconds=60))
    job = _job_without_step_pauses()
    with DagsterInstance.ephemeral() as instance:
        cursor = tick(instance, simulated_siro(late - timedelta(minutes=1)), None, tmp_path).cursor
        wall.now += timedelta(minutes=1)
        first = tick(instance, simulated_siro(late + SECOND), cursor, tmp_path)
        (r1,) = requests_for(first, day)
        assert parse_ts(r1.tags[UPDATED_SINCE_TAG]) <= late
        queue(job, instance, r1, day)
        wall.now += timedelta(minutes=1)
        second = tick(instance, simulated_siro(t0 + 30 * SECOND), first.cursor, tmp_path)
        assert not requests_for(second, day)
        assert pending_of(second)[day].key == r1.run_key
        assert format_ts(t0) >= r1.tags[UPDATED_SINCE_TAG]
