"""Where the sensor's requested runs stand, read from the Dagster instance.

The only Dagster-facing half of the pending-days bookkeeping (`pending_runs.py` decides).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta

from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, RunsFilter

from .dagster_gaps import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG, PARTITION_TAG
from ...changes.pending_runs import QueuedRun, RequestState, furthest_queued
from ..ingest.refresh import recording_ids, updated_since
from ..partitions import partition_date

__all__ = ["REQUEST_TAG", "QueuedRun", "queued_days", "request_key_of", "request_states"]

# Every run the sensor requests carries its run key here. Dagster's automatic run
# retries copy a run's tags, so the retries of a request are found by it too.
REQUEST_TAG = "siro/request"
RUN_ID_KEY_PREFIX = "run:"

_RUNNING = {DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING, DagsterRunStatus.MANAGED}
_NOT_STARTED = {DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED}


def request_key_of(run: DagsterRun) -> str:
    """The key a pending day uses for ``run``: its request tag, else its run id."""
    return run.tags.get(REQUEST_TAG) or f"{RUN_ID_KEY_PREFIX}{run.run_id}"


def _ids_only(run: DagsterRun) -> bool:
    """A webhook-driven run: it fetches the recordings it names, not its days' changes."""
    return bool(recording_ids(run.tags))


def _runs_of(instance: DagsterInstance, key: str) -> Sequence[DagsterRun]:
    if key.startswith(RUN_ID_KEY_PREFIX):
        group = instance.get_run_group(key[len(RUN_ID_KEY_PREFIX):])
        runs = list(group[1]) if group else []
    else:
        runs = [record.dagster_run for record in instance.get_run_records(RunsFilter(tags={REQUEST_TAG: key}))]
    # A day left to a webhook-driven run (a cursor written before such runs stopped
    # being relied on) is not settled by it: its state reads MISSING, so the day is
    # requested again once the grace is over.
    return [run for run in runs if not _ids_only(run)]


def _state(runs: Sequence[DagsterRun]) -> RequestState:
    statuses = {run.status for run in runs}
    if not runs:
        return RequestState.MISSING
    if DagsterRunStatus.SUCCESS in statuses:
        return RequestState.SUCCEEDED
    if statuses & _RUNNING:
        return RequestState.RUNNING
    if statuses & _NOT_STARTED:
        return RequestState.QUEUED
    if any(r.is_complete_and_waiting_to_retry for r in runs):
        return RequestState.RETRYING
    return RequestState.FAILED


def request_states(instance: DagsterInstance, keys: Iterable[str]) -> dict[str, RequestState]:
    """The state of each request: one run-storage query per distinct key."""
    return {key: _state(_runs_of(instance, key)) for key in sorted(set(keys))}


def _days_of(run: DagsterRun) -> list[date]:
    single = run.tags.get(PARTITION_TAG)
    if single:
        return [partition_date(single)]
    first, last = run.tags.get(PARTITION_RANGE_START_TAG), run.tags.get(PARTITION_RANGE_END_TAG)
    if not (first and last):
        return []
    a, b = partition_date(first), partition_date(last)
    return [a + timedelta(days=k) for k in range((b - a).days + 1)]


def queued_days(instance: DagsterInstance, job_name: str) -> dict[date, QueuedRun]:
    """Days covered by a run of ``job_name`` that is queued and has not started fetching,
    mapped to the one that reaches back furthest. Such a run fetches every change from
    its ``since`` on that is listed until it starts, so the sensor adds no second run
    for a day whose changes it covers (``pending_runs.covers``). A webhook-driven run
    covers no day (``pending_runs.furthest_queued``)."""
    records = instance.get_run_records(RunsFilter(job_name=job_name, statuses=sorted(_NOT_STARTED, key=str)))
    runs = [r.dagster_run for r in records]
    return furthest_queued(
        (QueuedRun(request_key_of(run), updated_since(run.tags), ids_only=_ids_only(run)), _days_of(run))
        for run in runs
    )
