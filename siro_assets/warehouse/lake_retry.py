"""Re-running a DuckLake transaction that lost a commit race, and only that.

DuckLake checks conflicts when a transaction commits (see `lake.py`); the loser rolls back
cleanly and `retry_lake_conflicts` runs the whole transaction again with bounded,
jittered backoff. A catalog connection lost while committing leaves the outcome unknown
(`LakeCommitUnknownError`: never re-run), and every other error is permanent. What the
retry logs and raises is scrubbed of the lake's secrets, which `LakeSettings` registers
with `siro_assets.redaction`.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import TypeVar

import duckdb
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from .. import redaction

logger = logging.getLogger("siro_assets.warehouse")

T = TypeVar("T")


class LakeCommitUnknownError(RuntimeError):
    """The catalog connection failed while a transaction committed: it may or may not have
    landed, so it is not re-run (a re-run could apply it twice). The message has no secret."""


# postgres_scanner's `Unable to connect to Postgres at "<DSN>"`: the DSN names hosts and
# users besides the (registered, masked) password; none of it helps a log reader.
_QUOTED_DSN = re.compile(r'(Postgres at |DuckLake MetaData "[^"]*" at path \+ )"[^"]*"')


def _scrubbed(text: str) -> str:
    return _QUOTED_DSN.sub(r'\1"<catalog DSN>"', redaction.scrub(text) or "")


# What a commit that lost a race says (DuckLake 1.5.5 on PostgreSQL 15, provoked for real;
# tests/unit/test_lake_retry.py). "Failed to commit DuckLake transaction." alone says
# nothing: DuckLake prefixes every commit error it gives up on with it.
# - a write-write conflict: `Transaction conflict - attempting to insert into table with
#   index "2" - but another transaction has deleted from it` (or `... to create table "t"
#   ... has been created by another transaction already`);
# - a catalog id another writer took first (duckdb/ducklake#1094), once DuckLake's own
#   retries are spent: `Exceeded the maximum retry count ... ERROR:  duplicate key value
#   violates unique constraint "ducklake_snapshot_pkey"`. Only DuckLake's own catalog tables
#   count: a duplicate key elsewhere is a real error.
_CONFLICT = re.compile(r'transaction conflict|duplicate key value violates unique constraint "ducklake_\w+"',
                       re.IGNORECASE)

# libpq's and postgres_scanner's texts for a catalog connection that failed; during a
# commit they leave its outcome unknown. A dead connection also fails DuckLake's ROLLBACK,
# which then replaces the original error (`Failed to commit: Failed to execute query "ROLLBACK": `).
_CONNECTION_LOST = re.compile(
    r"server closed the connection|terminating connection|no connection to the server|could not (?:receive|send) "
    r"data (?:from|to) server|ssl connection has been closed|connection to server .* failed|unable to connect to "
    r'postgres|failed to execute query "rollback"',
    re.IGNORECASE,
)


def is_lake_conflict(exc: BaseException) -> bool:
    """A commit another writer beat: the transaction rolled back and is worth re-running.

    A catalog connection that failed is never one, whatever else the message says.
    """
    if not isinstance(exc, duckdb.Error):
        return False
    text = str(exc)
    return _CONFLICT.search(text) is not None and _CONNECTION_LOST.search(text) is None


def is_commit_outcome_unknown(exc: BaseException) -> bool:
    """The catalog connection failed while the transaction committed: it may have landed."""
    text = str(exc)
    return (isinstance(exc, duckdb.Error) and "failed to commit" in text.lower()
            and _CONNECTION_LOST.search(text) is not None)


#: Attempts per transaction before a conflict is raised (bounded: a writer that loses this
#: many races in a row is reported, not retried forever). Four writers committing to one
#: table back to back made a writer lose 8 races in a row on a loaded 2-core machine
#: (tests/lake/test_upstream_concurrency.py); 20 waits up to about a minute in all.
CONFLICT_ATTEMPTS = 20


def retry_lake_conflicts(
    work: Callable[[], T],
    *,
    attempts: int = CONFLICT_ATTEMPTS,
    initial_wait: float = 0.1,
    max_wait: float = 4.0,
    sleep: Callable[[float], None] = time.sleep,
    retry_on: Callable[[BaseException], bool] = is_lake_conflict,
) -> T:
    """Run `work` (one whole transaction), again after a DuckLake commit conflict.

    Waits are random-exponential (`initial_wait` doubling up to `max_wait`), so two
    writers that collided do not collide again in lockstep. Other errors propagate at
    once; a DuckDB file never raises a lake conflict, so there `work` runs once.
    `retry_on` widens or narrows what counts as a lost race.

    A catalog connection lost while committing raises `LakeCommitUnknownError` at once.
    What is logged and raised is scrubbed of the lake's secrets (and of quoted DSNs); an
    error whose text needed scrubbing is raised as a scrubbed copy of its type, without
    the original chained to it.
    """
    retrying = Retrying(
        retry=retry_if_exception(lambda exc: retry_on(exc) and not is_commit_outcome_unknown(exc)),
        wait=wait_random_exponential(multiplier=initial_wait, max=max_wait),
        stop=stop_after_attempt(attempts),
        sleep=sleep,
        before_sleep=_log_retry,
        reraise=True,
    )
    try:
        return retrying(work)
    except duckdb.Error as exc:
        failure = _clean_failure(exc)
        if failure is None:
            raise
    # Raised outside the `except`, so the original (secret-bearing) text is not its context.
    raise failure


def _log_retry(state: RetryCallState) -> None:
    # tenacity's before_sleep_log would log the raw exception; bench/lake.py counts the
    # "Retrying" lines.
    exc = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    logger.info("Retrying %s in %.3g seconds as it raised %s", state.get_fn_name(), wait,
                _scrubbed(f"{type(exc).__name__}: {exc}"))


def _clean_failure(exc: duckdb.Error) -> BaseException | None:
    """What to raise instead of `exc` (None: `exc` itself, which holds no secret)."""
    text = _scrubbed(str(exc))
    if is_commit_outcome_unknown(exc):
        return LakeCommitUnknownError(
            "the DuckLake catalog connection failed while a transaction committed, so whether it committed is "
            f"unknown; it was not re-run (a re-run could apply it twice). Check the catalog, then re-run: {text}"
        )
    if text == str(exc):
        return None
    try:
        return type(exc)(text)
    except TypeError:
        return duckdb.Error(text)


__all__ = [
    "CONFLICT_ATTEMPTS",
    "LakeCommitUnknownError",
    "is_commit_outcome_unknown",
    "is_lake_conflict",
    "retry_lake_conflicts",
]
