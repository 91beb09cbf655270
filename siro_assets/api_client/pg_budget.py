"""The token's request budget in PostgreSQL, shared by every process on every machine.

`SharedRequestPacer` (pacing.py) keeps the GCRA schedule in a SQLite file, whose lock
holds on one machine only. In lake mode run pods fan out across nodes and share nothing
local, but they all reach the lake's PostgreSQL catalog. `PostgresRequestPacer` keeps the
same schedule there: one row per budget key (a hash of the token, never the token) in
`siro_request_budget`, read `FOR UPDATE` and written in one short transaction per
request, so concurrent callers take turns on the row and together never exceed the
budget. "Now" is the database server's clock by default, so pods with skewed clocks
still agree on one schedule.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable

import psycopg2
import psycopg2.errors

from .pacing import DEFAULT_BURST, DEFAULT_REQUESTS_PER_MINUTE, RequestPacer, SharedRequestPacer

__all__ = ["BUDGET_TABLE", "PostgresRequestPacer"]

BUDGET_TABLE = "siro_request_budget"

_CREATE = f"CREATE TABLE IF NOT EXISTS {BUDGET_TABLE} (key TEXT PRIMARY KEY, tat DOUBLE PRECISION NOT NULL)"


class PostgresRequestPacer(RequestPacer):
    """A ``RequestPacer`` whose schedule lives in PostgreSQL (``dsn``, a libpq DSN).

    ``key`` names the budget (``pacing.budget_key(token)``). ``clock=None`` reads the
    server's clock (seconds since the epoch) in the same transaction; a stored schedule
    implausibly far ahead of it is reset, as in ``SharedRequestPacer``. Waiting happens
    after the transaction commits, so the row is held only for the update. The DSN (it
    may carry a password) is never shown.
    """

    reserve_blocks = True  # a PostgreSQL round trip, and a wait on the row's lock


    MAX_AHEAD_SECONDS = SharedRequestPacer.MAX_AHEAD_SECONDS

    def __init__(
        self,
        dsn: str,
        key: str,
        requests_per_minute: float = DEFAULT_REQUESTS_PER_MINUTE,
        *,
        burst: int = DEFAULT_BURST,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        connect_timeout: int = 10,
    ) -> None:
        super().__init__(requests_per_minute, burst=burst, clock=clock or time.time, sleep=sleep,
                         async_sleep=async_sleep)
        if not key:
            raise ValueError("key must be non-empty")
        self._dsn = dsn
        self._server_clock = clock is None
        self.key = key
        self._connect_timeout = connect_timeout
        self._con = None
        self._con_pid: int | None = None

    def __repr__(self) -> str:
        return f"PostgresRequestPacer(requests_per_minute={self.requests_per_minute:g}, burst={self.burst})"

    def _connection(self):
        # Called with the thread lock held. A connection must not cross a fork.
        if self._con is None or self._con.closed or self._con_pid != os.getpid():
            # A holder that hangs mid-transaction (a frozen pod) is cut off by the server,
            # releasing the row; a waiter gives up rather than wait on it forever.
            con = psycopg2.connect(self._dsn, connect_timeout=self._connect_timeout,
                                   application_name="siro-request-budget",
                                   options="-c idle_in_transaction_session_timeout=10s -c lock_timeout=30s")
            try:
                with con, con.cursor() as cur:
                    cur.execute(_CREATE)
            except (psycopg2.errors.UniqueViolation, psycopg2.errors.DuplicateTable):
                pass  # another process created it at the same moment (CREATE ... IF NOT EXISTS races)
            self._con, self._con_pid = con, os.getpid()
        return self._con

    def reserve(self) -> float:
        """Claim the next slot of the shared budget; return how long to wait for it."""
        if self._interval == 0.0:
            return 0.0
        with self._lock:
            con = self._connection()
            try:
                with con, con.cursor() as cur:  # one transaction: commit, or roll back on error
                    # Make sure the row exists, then lock it: concurrent callers queue here.
                    cur.execute(
                        f"INSERT INTO {BUDGET_TABLE} (key, tat) VALUES (%s, 0) ON CONFLICT (key) DO NOTHING",
                        [self.key],
                    )
                    cur.execute(
                        f"SELECT tat, extract(epoch FROM clock_timestamp())::float8 FROM {BUDGET_TABLE} "
                        "WHERE key = %s FOR UPDATE",
                        [self.key],
                    )
                    tat, server_now = cur.fetchone()
                    now = server_now if self._server_clock else self._clock()
                    if tat > now + self.MAX_AHEAD_SECONDS or tat <= 0:
                        tat = None
                    delay, new_tat = self._next_slot(tat, now)
                    cur.execute(f"UPDATE {BUDGET_TABLE} SET tat = %s WHERE key = %s", [new_tat, self.key])
            except psycopg2.OperationalError:
                self._drop_connection()  # a lost server connection: reconnect on the next call
                raise
            return delay

    def _drop_connection(self) -> None:
        if self._con is not None and self._con_pid == os.getpid():
            self._con.close()
        self._con = None

    def close(self) -> None:
        """Close this process's connection (reopened on next use)."""
        with self._lock:
            self._drop_connection()
