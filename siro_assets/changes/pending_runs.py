"""Pending days: the sensor's promise that every change it saw reaches the tables.

The cursor moves past a change as soon as a run for its day is requested. If that run
fails for good (Siro down longer than every retry), nothing else would ever fetch the
change again: the nightly schedule re-pulls only yesterday, and a replayed tick gives
the same run key, which Dagster drops. So the cursor keeps each requested day until a
run of its request succeeds, and the sensor requests the day again, under a new run
key and with growing pauses, when the request's runs have all failed.

A pending day also carries the oldest change it still owes (``PendingRequest.since``).
A run for it counts only if it covers that change: it lists from that ``updatedAt`` or
earlier, or pulls the whole day. So a newer change on a day whose run failed, is
running or is about to be retried gets a run that reaches back to the older change
(``owed_since``), and a queued run is relied on only if it lists every change owed
(``covers``). A run that fetches only the recordings it names (a webhook-driven run)
covers no day: it is never relied on, and its success settles no pending day.

Pure decisions only; `run_status.py` reads the run states from the Dagster instance.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from .sensor_cursor import PendingRequest

__all__ = [
    "MISSING_RUN_GRACE",
    "PendingReview",
    "QueuedRun",
    "RequestState",
    "covers",
    "furthest_queued",
    "next_pending",
    "owed_since",
    "rerequest_backoff",
    "review_pending",
]

# A requested run that does not exist this long after the request was dropped
# (the tick's result was never stored, or the run was deleted): request it again.
MISSING_RUN_GRACE = timedelta(minutes=10)
FIRST_BACKOFF = timedelta(minutes=1)
MAX_BACKOFF = timedelta(minutes=30)


class RequestState(enum.Enum):
    """Where the runs of one request stand, best outcome first."""

    SUCCEEDED = "succeeded"  # a run of the request (or a retry of it) succeeded
    RUNNING = "running"  # a run is executing
    QUEUED = "queued"  # a run exists but has not started fetching yet
    RETRYING = "retrying"  # every run failed, and Dagster's run retries will launch another
    FAILED = "failed"  # every run failed or was canceled, and nothing will retry it
    MISSING = "missing"  # no run carries the request (yet)


def rerequest_backoff(attempt: int) -> timedelta:
    """How long after the ``attempt``-th request a failed day is requested again:
    1, 2, 4, ... minutes, at most 30, so an hour-long outage costs a handful of runs
    and a recovered API is noticed within half an hour."""
    return min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** max(attempt - 1, 0))


@dataclass
class PendingReview:
    """The pending days sorted by what to do about them this tick.

    ``done``: covered by a successful run, forget them. ``waiting``: a run is queued,
    running or about to be retried, or the failed request is still in its backoff;
    keep them as they are. ``due``: request again now. ``queued``: days whose request
    has a run that has not started yet, so it will fetch any change listed now.
    """

    done: list[date] = field(default_factory=list)
    waiting: dict[date, PendingRequest] = field(default_factory=dict)
    due: dict[date, PendingRequest] = field(default_factory=dict)
    failed: set[date] = field(default_factory=set)
    queued: set[date] = field(default_factory=set)


def review_pending(
    pending: Mapping[date, PendingRequest],
    states: Mapping[str, RequestState],
    now: datetime,
    *,
    missing_grace: timedelta = MISSING_RUN_GRACE,
) -> PendingReview:
    """Decide, per pending day, from the state of its request's runs (``states`` by key).

    A key without a state counts as MISSING. ``now`` is the wall clock the requests
    were stamped with.
    """
    review = PendingReview()
    for day, request in sorted(pending.items()):
        state = states.get(request.key, RequestState.MISSING)
        age = now - request.requested_at
        if state is RequestState.SUCCEEDED:
            review.done.append(day)
        elif state in (RequestState.RUNNING, RequestState.QUEUED, RequestState.RETRYING):
            review.waiting[day] = request
            if state is RequestState.QUEUED:
                review.queued.add(day)
        elif state is RequestState.MISSING and age < missing_grace:
            review.waiting[day] = request
        else:
            review.failed.add(day)
            if age >= rerequest_backoff(request.attempt):
                review.due[day] = request
            else:
                review.waiting[day] = request
    return review


def covers(run_since: datetime | None, owed: datetime | None) -> bool:
    """Whether a run listing ``updatedAt >= run_since`` (None: the whole day) fetches
    every change from ``owed`` on (None: unknown, so only a whole-day run does)."""
    return run_since is None or (owed is not None and run_since <= owed)


@dataclass(frozen=True)
class QueuedRun:
    """A run that has not started fetching: its request key, and the ``updatedAt`` it
    will list from (``siro/updated_since``; None: it pulls its days whole).
    ``ids_only``: it fetches just the recordings it names (``siro/recording_ids``),
    whatever else changed on its days."""

    key: str
    since: datetime | None
    ids_only: bool = False


def _reaches_further(run: QueuedRun, than: QueuedRun) -> bool:
    return than.since is not None and (run.since is None or run.since < than.since)


def furthest_queued(runs: Iterable[tuple[QueuedRun, Iterable[date]]]) -> dict[date, QueuedRun]:
    """Each day of the queued ``runs`` (each with its days) mapped to the run that
    reaches back furthest, the one ``covers`` is asked about. A run fetching only named
    ids lists no day's changes, so it covers none: counting it as a whole-day pull
    (its ``since`` is None) would leave the other changes of its days unfetched."""
    out: dict[date, QueuedRun] = {}
    for run, days in runs:
        if run.ids_only:
            continue
        for day in days:
            if day not in out or _reaches_further(run, out[day]):
                out[day] = run
    return out


def owed_since(review: PendingReview, changes: Mapping[date, datetime]) -> dict[date, datetime | None]:
    """The oldest change each day owes after this tick's listing (None: the whole day).

    ``changes`` maps each day with new changes to the oldest ``updatedAt`` among them.
    A day still pending (its request has not succeeded: waiting or due) also owes what
    its request owed, so a new request for it must reach back that far; a day whose
    request succeeded owes only its new changes.
    """
    out: dict[date, datetime | None] = dict(changes)
    for day, request in [*review.waiting.items(), *review.due.items()]:
        new = changes.get(day, request.since)
        out[day] = None if request.since is None or new is None else min(request.since, new)
    return out


def next_pending(
    review: PendingReview,
    requested: Mapping[date, str],
    relied_on: Mapping[date, str],
    previous: Mapping[date, PendingRequest],
    now: datetime,
    owed: Mapping[date, datetime | None] | None = None,
) -> dict[date, PendingRequest]:
    """The pending days after this tick's requests.

    ``requested`` maps each day a run was requested for now to its run key,
    ``relied_on`` each day whose new changes an already queued run will fetch to that
    run's request key. ``owed`` (from ``owed_since``) is the oldest change each of
    those days owes, which its new entry carries; both kinds of run must cover it (the
    caller checks). A day requested again after a failure keeps counting attempts, so
    its backoff keeps growing while the outage lasts.
    """
    owed = owed or {}
    out = dict(review.waiting)
    for day, key in relied_on.items():
        if day not in requested:
            old = previous.get(day)
            if old is not None and old.key == key:
                out[day] = replace(old, since=owed.get(day, old.since))
            else:
                out[day] = PendingRequest(key, now, 1, since=owed.get(day))
    for day, key in requested.items():
        old = previous.get(day)
        attempt = old.attempt + 1 if old is not None and day in review.failed else 1
        out[day] = PendingRequest(key=key, requested_at=now, attempt=attempt, since=owed.get(day))
    return out
