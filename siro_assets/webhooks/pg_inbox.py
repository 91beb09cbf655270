"""The webhook inbox in PostgreSQL: the `Inbox` interface on one table, for several machines.

Selected by `webhooks.inbox_dsn_env` (docs/OPERATIONS.md): the receiver and the webhook
sensor then share a database instead of a file, so in Kubernetes neither needs the
warehouse volume. Same behaviour as `SqliteInbox`: dedupe by `(endpoint, message_id)`,
history bounded by retention and capacity, `InboxFull` past the capacity.

Appends take a self-conflicting table lock (`SHARE ROW EXCLUSIVE`, which readers never
wait for) for their transaction. That serialises them across receiver replicas, so the
capacity check holds and seqs are committed in increasing order: a PostgreSQL sequence
alone hands out numbers outside the transaction, and a drain past seq 6 would miss a
seq 5 that committed later. Commits are durable (`synchronous_commit` as the server
sets it, `on` by default) before `append` returns, so the 2xx follows the commit.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg2

from .inbox import DEFAULT_CAPACITY, DEFAULT_RETENTION, Appended, Inbox, InboxEvent, InboxFull, StoredEvent

__all__ = ["TABLE", "PostgresInbox"]

TABLE = "siro_webhook_events"
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
"""


class PostgresInbox(Inbox):
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
        self.capacity = capacity
        self.retention = retention
        self._now = now
        self._connect_timeout = connect_timeout
        self.__dsn = dsn
        self._lock = threading.Lock()
        self._con: Any = None
        with self._lock:
            con = self._connection()
            with con, con.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (_CREATE_LOCK_KEY,))
                cur.execute(_SCHEMA)

    def _connection(self):
        if self._con is None or self._con.closed:
            self._con = psycopg2.connect(self.__dsn, connect_timeout=self._connect_timeout,
                                         application_name="siro-webhooks")
        return self._con

    def append(self, event: InboxEvent) -> Appended:
        """See `Inbox.append`; also drops history older than the retention."""
        now = self._now()
        with self._lock:
            con = self._connection()
            full = None
            with con, con.cursor() as cur:  # commits on leaving, rolls back on an exception
                cur.execute(f"LOCK TABLE {TABLE} IN SHARE ROW EXCLUSIVE MODE")
                cur.execute(f"SELECT seq FROM {TABLE} WHERE endpoint = %s AND message_id = %s",
                            (event.endpoint, event.message_id))
                known = cur.fetchone()
                if known:
                    return Appended(seq=int(known[0]), duplicate=True)
                cur.execute(f"DELETE FROM {TABLE} WHERE received_at < %s", (now - self.retention,))
                cur.execute(f"SELECT count(*) FROM {TABLE}")
                (held,) = cur.fetchone()
                if held >= self.capacity:
                    full = held  # commit the trim, then refuse
                else:
                    cur.execute(
                        f"INSERT INTO {TABLE} (endpoint, message_id, event_type, recording_id, received_at, payload)"
                        " VALUES (%s, %s, %s, %s, %s, %s) RETURNING seq",
                        (event.endpoint, event.message_id, event.event_type, event.recording_id, now,
                         json.dumps(event.payload, separators=(",", ":"))),
                    )
                    (seq,) = cur.fetchone()
        if full is not None:
            raise InboxFull(f"the webhook inbox holds {full} events (capacity {self.capacity})")
        return Appended(seq=int(seq), duplicate=False)

    def read_after(self, seq: int, limit: int, *, endpoint: str | None = None) -> list[StoredEvent]:
        """See `Inbox.read_after`."""
        sql = (f"SELECT seq, endpoint, message_id, event_type, recording_id, received_at, payload"
               f" FROM {TABLE} WHERE seq > %s")
        params: list[Any] = [seq]
        if endpoint is not None:
            sql += " AND endpoint = %s"
            params.append(endpoint)
        sql += " ORDER BY seq LIMIT %s"
        params.append(limit)
        with self._lock:
            con = self._connection()
            with con, con.cursor() as cur:
                cur.execute(sql, params)
                rows = cur.fetchall()
        return [
            StoredEvent(endpoint=ep, message_id=mid, event_type=et, recording_id=rid, payload=json.loads(body),
                        seq=int(s), received_at=at.astimezone(timezone.utc))
            for s, ep, mid, et, rid, at, body in rows
        ]

    def count(self) -> int:
        """See `Inbox.count`."""
        with self._lock:
            con = self._connection()
            with con, con.cursor() as cur:
                cur.execute(f"SELECT count(*) FROM {TABLE}")
                return int(cur.fetchone()[0])

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if self._con is not None and not self._con.closed:
                self._con.close()

    def __repr__(self) -> str:
        return f"PostgresInbox(dsn=<hidden>, capacity={self.capacity})"
