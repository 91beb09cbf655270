"""The webhook inbox in PostgreSQL: the `Inbox` interface on one table, for several machines.

Selected by `webhooks.inbox_dsn_env` (docs/OPERATIONS.md): the receiver and the webhook
sensor then share a database instead of a file, so in Kubernetes neither needs the
warehouse volume. Same behaviour as `SqliteInbox`: dedupe by `(endpoint, message_id)`,
history bounded by retention and capacity (drained events dropped first), `InboxFull`
past the capacity.

Appends take a self-conflicting table lock (`SHARE ROW EXCLUSIVE`, which readers never
wait for) for their transaction. That serialises them across receiver replicas, so the
capacity check holds and seqs are committed in increasing order: a PostgreSQL sequence
alone hands out numbers outside the transaction, and a drain past seq 6 would miss a
seq 5 that committed later. Commits are durable (`synchronous_commit` as the server
sets it, `on` by default) before `append` returns, so the 2xx follows the commit. The
store logic is `SqlInbox`'s; this module is the PostgreSQL dialect.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg2

from .inbox import DEFAULT_CAPACITY, DEFAULT_RETENTION, SqlInbox

__all__ = ["CONSUMED_TABLE", "TABLE", "PostgresInbox"]

TABLE = "siro_webhook_events"
CONSUMED_TABLE = "siro_webhook_consumed"
# Any constant: it only keeps two processes from creating the table at once.
_CREATE_LOCK_KEY = 0x5190_3B00

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    -- An identity never reuses a value, even after the newest rows are trimmed.
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint     TEXT        NOT NULL,
    message_id   TEXT        NOT NULL,
    event_type   TEXT        NOT NULL,
    recording_id TEXT        NOT NULL,
    received_at  TIMESTAMPTZ NOT NULL,
    payload      TEXT        NOT NULL,  -- the JSON as signed (jsonb would reorder it)
    UNIQUE (endpoint, message_id)
);
CREATE INDEX IF NOT EXISTS {TABLE}_received ON {TABLE} (received_at);
CREATE TABLE IF NOT EXISTS {CONSUMED_TABLE} (
    endpoint TEXT   PRIMARY KEY,
    seq      BIGINT NOT NULL
);
"""


class PostgresInbox(SqlInbox):
    """The inbox as the `siro_webhook_events` table of the database `dsn` names.

    One connection per instance, shared by threads under a lock, reopened when the
    server dropped it (a restart fails the requests in flight; the next one reconnects).
    The DSN (it holds a password) is kept only to reconnect and never shown.
    """

    def __init__(
        self,
        dsn: str,
        *,
        capacity: int = DEFAULT_CAPACITY,
        retention: timedelta = DEFAULT_RETENTION,
        now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        connect_timeout: int = 10,
    ) -> None:
        """Connect to `dsn` (libpq) and create the table if needed."""
        super().__init__(capacity, retention, now)
        self._connect_timeout = connect_timeout
        self.__dsn = dsn
        self._con: Any = None
        with self._lock:
            con = self._connection()
            with con, con.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (_CREATE_LOCK_KEY,))
                cur.execute(_SCHEMA)

    _table = TABLE
    _received = "received_at"
    _consumed = CONSUMED_TABLE
    _placeholder = "%s"

    def _connection(self):
        if self._con is None or self._con.closed:
            # The 2xx follows the commit, so the commit must be on disk whatever the
            # server's default: `synchronous_commit = off` would acknowledge what a crash
            # can still lose.
            self._con = psycopg2.connect(self.__dsn, connect_timeout=self._connect_timeout,
                                         application_name="siro-webhooks", options="-c synchronous_commit=on")
        return self._con

    @contextmanager
    def _transaction(self, *, append: bool) -> Iterator[Any]:
        con = self._connection()
        with con, con.cursor() as cur:  # commits on leaving, rolls back on an exception
            if append:
                cur.execute(f"LOCK TABLE {TABLE} IN SHARE ROW EXCLUSIVE MODE")
            yield cur

    def _stamp(self, t: datetime) -> datetime:
        return t

    def _unstamp(self, value: datetime) -> datetime:
        return value.astimezone(timezone.utc)

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if self._con is not None and not self._con.closed:
                self._con.close()

    def __repr__(self) -> str:
        return f"PostgresInbox(dsn=<hidden>, capacity={self.capacity})"
