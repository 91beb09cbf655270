"""The durable webhook inbox: accepted events, deduplicated by message id, in arrival order.

The receiver appends (and answers 2xx only once `append` has returned, i.e. committed);
a consumer drains past its cursor with `read_after`. It never touches DuckDB, so a long
derived rebuild holding the warehouse writer lock cannot make the receiver time out.

`SqliteInbox` is the one-machine store: a small SQLite file in WAL mode beside the
warehouse (`inbox_path_for`). `Inbox` is the interface another store (PostgreSQL, the
lake catalog) implements.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_CAPACITY",
    "DEFAULT_RETENTION",
    "Appended",
    "Inbox",
    "InboxEvent",
    "InboxFull",
    "SqlInbox",
    "SqliteInbox",
    "StoredEvent",
    "inbox_path_for",
]

#: Rows kept at most. A full inbox first drops the oldest events its consumers have
#: drained (`mark_consumed`); only undrained ones past it make the receiver answer 503.
DEFAULT_CAPACITY = 100_000
#: How long a message id stays known (and its event readable). Longer than Svix's retry
#: schedule (about 28 hours), so a redelivery after a lost acknowledgement is still a
#: duplicate, and far longer than a sensor needs to drain.
DEFAULT_RETENTION = timedelta(days=3)

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_US = timedelta(microseconds=1)


def inbox_path_for(warehouse_path: str | Path) -> Path:
    """The inbox file for a warehouse file: beside it, `<stem>.webhooks.sqlite`."""
    path = Path(warehouse_path).resolve()
    return path.with_name(f"{path.stem}.webhooks.sqlite")


class InboxFull(Exception):
    """The inbox holds `capacity` events; the receiver answers 503 so the sender retries."""


@dataclass(frozen=True)
class InboxEvent:
    """A verified, schema-valid event to store; `(endpoint, message_id)` is its identity."""

    endpoint: str
    message_id: str
    event_type: str
    recording_id: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class StoredEvent(InboxEvent):
    """An event as stored: with its sequence number and when it was received."""

    seq: int = 0
    received_at: datetime = _EPOCH


@dataclass(frozen=True)
class Appended:
    """The outcome of `append`: the event's seq, and whether it was already stored."""

    seq: int
    duplicate: bool


class Inbox(ABC):
    """A durable, deduplicating, bounded queue of webhook events."""

    @abstractmethod
    def append(self, event: InboxEvent) -> Appended:
        """Store `event` durably (committed when this returns) unless its id is known.

        Raises `InboxFull` when a new event would exceed the capacity; a known id is
        reported as a duplicate even then.
        """

    @abstractmethod
    def read_after(self, seq: int, limit: int, *, endpoint: str | None = None) -> list[StoredEvent]:
        """Up to `limit` events with a seq above `seq`, in seq order (optionally one endpoint's).

        Seqs only grow, and a seq is assigned inside the committing transaction, so a
        consumer that remembers the last seq it handled never misses a later commit.
        """

    @abstractmethod
    def count(self) -> int:
        """How many events the inbox holds."""

    @abstractmethod
    def mark_consumed(self, endpoint: str, seq: int) -> None:
        """Note that `endpoint`'s consumer has drained its events up to `seq` (never lowered).

        Drained events stay readable (replays, dedupe) until the retention drops them, or
        until the inbox is full: then they go first, oldest first, so a burst a sensor
        has already drained never makes the receiver refuse new events.
        """

    def close(self) -> None:
        """Release the store's connections."""

    def __enter__(self) -> "Inbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _to_us(t: datetime) -> int:
    return (t - _EPOCH) // _US


class SqlInbox(Inbox):
    """The inbox's logic on one SQL table, for any DB-API store; a subclass gives the dialect.

    The dialect: `_transaction` (where appends serialise), `_placeholder`, the table and
    arrival-time column names, and how an arrival time is stored (`_stamp`/`_unstamp`).
    The SQL here is written with `?` placeholders and `{table}`/`{received}`/`{consumed}`
    names (`{consumed}`: each endpoint's drained-through seq).
    """

    _table: str
    _received: str
    _consumed: str
    _placeholder = "?"

    def __init__(self, capacity: int, retention: timedelta, now: Callable[[], datetime]) -> None:
        self.capacity = capacity
        self.retention = retention
        self._now = now
        self._lock = threading.Lock()

    @abstractmethod
    def _transaction(self, *, append: bool) -> AbstractContextManager[Any]:
        """A cursor in one transaction: committed on leaving, rolled back on an exception.
        With `append`, the transaction excludes every other append until it ends (so the
        capacity check holds and seqs commit in increasing order)."""

    @abstractmethod
    def _stamp(self, t: datetime) -> Any:
        """An arrival time as the store keeps it."""

    @abstractmethod
    def _unstamp(self, value: Any) -> datetime:
        """A stored arrival time as an aware UTC datetime."""

    def _sql(self, text: str) -> str:
        return text.format(table=self._table, received=self._received,
                           consumed=self._consumed).replace("?", self._placeholder)

    def append(self, event: InboxEvent) -> Appended:
        """See `Inbox.append`; also drops history older than the retention."""
        now = self._now()
        full = None
        with self._lock, self._transaction(append=True) as cur:
            cur.execute(self._sql("SELECT seq FROM {table} WHERE endpoint = ? AND message_id = ?"),
                        (event.endpoint, event.message_id))
            known = cur.fetchone()
            if known:
                return Appended(seq=int(known[0]), duplicate=True)
            cur.execute(self._sql("DELETE FROM {table} WHERE {received} < ?"), (self._stamp(now - self.retention),))
            cur.execute(self._sql("SELECT count(*) FROM {table}"))
            (held,) = cur.fetchone()
            if held >= self.capacity:
                held -= self._drop_drained(cur, held - self.capacity + 1)
            if held >= self.capacity:
                full = held  # commit the trim, then refuse
            else:
                cur.execute(
                    self._sql("INSERT INTO {table} (endpoint, message_id, event_type, recording_id, {received},"
                              " payload) VALUES (?, ?, ?, ?, ?, ?) RETURNING seq"),
                    (event.endpoint, event.message_id, event.event_type, event.recording_id, self._stamp(now),
                     json.dumps(event.payload, separators=(",", ":"))),
                )
                # fetchall: SQLite finishes an INSERT ... RETURNING only once its rows are all read.
                ((seq,),) = cur.fetchall()
        if full is not None:
            raise InboxFull(f"the webhook inbox holds {full} events (capacity {self.capacity})")
        return Appended(seq=int(seq), duplicate=False)

    def _drop_drained(self, cur: Any, wanted: int) -> int:
        """Delete up to `wanted` of the oldest drained events (at least a tenth of the
        capacity, so a full inbox does not trim on every append); how many went."""
        cur.execute(self._sql(
            "DELETE FROM {table} WHERE seq IN (SELECT e.seq FROM {table} AS e"
            " JOIN {consumed} AS c ON c.endpoint = e.endpoint WHERE e.seq <= c.seq ORDER BY e.seq LIMIT ?)"),
            (max(wanted, self.capacity // 10),))
        return max(cur.rowcount, 0)

    def mark_consumed(self, endpoint: str, seq: int) -> None:
        """See `Inbox.mark_consumed`. Reads first: a sensor calls it every tick, and an
        idle tick (nothing new drained) must not be a write."""
        with self._lock, self._transaction(append=False) as cur:
            cur.execute(self._sql("SELECT seq FROM {consumed} WHERE endpoint = ?"), (endpoint,))
            known = cur.fetchone()
            if known is not None and int(known[0]) >= seq:
                return
            cur.execute(self._sql(
                "INSERT INTO {consumed} (endpoint, seq) VALUES (?, ?) ON CONFLICT (endpoint)"
                " DO UPDATE SET seq = excluded.seq WHERE excluded.seq > {consumed}.seq"), (endpoint, seq))

    def read_after(self, seq: int, limit: int, *, endpoint: str | None = None) -> list[StoredEvent]:
        """See `Inbox.read_after`."""
        sql = ("SELECT seq, endpoint, message_id, event_type, recording_id, {received}, payload"
               " FROM {table} WHERE seq > ?")
        params: list[Any] = [seq]
        if endpoint is not None:
            sql += " AND endpoint = ?"
            params.append(endpoint)
        sql += " ORDER BY seq LIMIT ?"
        params.append(limit)
        with self._lock, self._transaction(append=False) as cur:
            cur.execute(self._sql(sql), params)
            rows = cur.fetchall()
        return [
            StoredEvent(endpoint=ep, message_id=mid, event_type=et, recording_id=rid, payload=json.loads(body),
                        seq=int(s), received_at=self._unstamp(at))
            for s, ep, mid, et, rid, at, body in rows
        ]

    def count(self) -> int:
        """See `Inbox.count`."""
        with self._lock, self._transaction(append=False) as cur:
            cur.execute(self._sql("SELECT count(*) FROM {table}"))
            return int(cur.fetchone()[0])


_SCHEMA = """CREATE TABLE IF NOT EXISTS webhook_events (
    -- AUTOINCREMENT: a seq is never reused, even after the newest rows are trimmed.
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint       TEXT    NOT NULL,
    message_id     TEXT    NOT NULL,
    event_type     TEXT    NOT NULL,
    recording_id   TEXT    NOT NULL,
    received_at_us INTEGER NOT NULL,
    payload        TEXT    NOT NULL,
    UNIQUE (endpoint, message_id)
);
CREATE INDEX IF NOT EXISTS webhook_events_received ON webhook_events (received_at_us);
CREATE TABLE IF NOT EXISTS webhook_consumed (
    endpoint TEXT    PRIMARY KEY,
    seq      INTEGER NOT NULL
);
"""


class SqliteInbox(SqlInbox):
    """The inbox in one SQLite file (WAL mode, `synchronous=FULL`).

    WAL lets a reader in another process drain while the receiver writes; FULL makes
    each commit survive a power cut, not only a killed process, before the 2xx goes out.
    One connection per instance, shared by threads under a lock.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        capacity: int = DEFAULT_CAPACITY,
        retention: timedelta = DEFAULT_RETENTION,
        now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        busy_timeout: timedelta = timedelta(seconds=10),
    ) -> None:
        """Open (creating if needed) the inbox file at `path`."""
        super().__init__(capacity, retention, now)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._con.execute(f"PRAGMA busy_timeout = {int(busy_timeout.total_seconds() * 1000)}")
        self._con.execute("PRAGMA journal_mode = WAL")
        self._con.execute("PRAGMA synchronous = FULL")
        self._con.executescript(_SCHEMA)

    _table = "webhook_events"
    _received = "received_at_us"
    _consumed = "webhook_consumed"

    @contextmanager
    def _transaction(self, *, append: bool) -> Iterator[sqlite3.Cursor]:
        # Autocommit otherwise: a read needs no transaction of its own.
        con = self._con
        cur = con.cursor()
        try:
            if append:
                cur.execute("BEGIN IMMEDIATE")  # the write lock now, not at the first write
            yield cur
            if con.in_transaction:
                con.execute("COMMIT")
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise
        finally:
            cur.close()

    def _stamp(self, t: datetime) -> int:
        return _to_us(t)

    def _unstamp(self, value: int) -> datetime:
        return _EPOCH + value * _US

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            self._con.close()

    def __repr__(self) -> str:
        return f"SqliteInbox({str(self.path)!r}, capacity={self.capacity})"
