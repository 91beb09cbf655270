"""Client-side request pacing shared by every thread and event loop in a process.

Siro allows 1,000 requests per minute per token and documents no ``Retry-After`` or
``X-RateLimit-*`` headers, so the client must stay under the limit on its own.

``RequestPacer`` is a small GCRA ("next free slot") scheduler: each caller atomically
reserves the next slot under a ``threading.Lock`` and is told how long to wait for it;
sync callers ``time.sleep`` and async callers ``asyncio.sleep`` outside the lock.
Because the only shared state is a float behind a thread lock, one pacer can be
shared by sync clients in many threads and async clients on several event loops.
``aiolimiter`` was not used because it is asyncio-only and bound to one event loop,
which cannot give a single budget across threads and loops.

``SharedRequestPacer`` keeps the same schedule in a small SQLite file instead, so every
process on the machine that uses the same token (the sensor in the code server, each run
worker, each CLI run) draws on one budget: a row per token, keyed by a hash of the token
(never the token itself), updated in one ``BEGIN IMMEDIATE`` transaction per request.
SQLite (standard library) gives the cross-process lock, a crash-safe update and one file
for any number of tokens, with nothing hand-written to get wrong.
Its lock holds on one machine only; pods on several machines (lake mode) share
``pg_budget.PostgresRequestPacer`` instead, the same schedule in a PostgreSQL row.

Clock and sleep functions are injectable so tests can verify pacing on fake time.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable

__all__ = [
    "RequestPacer",
    "SharedRequestPacer",
    "budget_key",
    "default_pacer",
    "DEFAULT_REQUESTS_PER_MINUTE",
    "DEFAULT_BURST",
]

# 5% headroom under the documented 1,000/min: with the burst allowance, no sliding
# minute ever sees more than 960 requests, so clock skew and a few requests from other
# consumers of the same token do not push us into 429s, and a backfill still uses 95%
# of the ceiling.
DEFAULT_REQUESTS_PER_MINUTE = 950.0
DEFAULT_BURST = 10


class RequestPacer:
    """Paces requests to ``requests_per_minute`` with a burst allowance of ``burst``.

    ``requests_per_minute=math.inf`` disables pacing (useful with the simulator).
    """

    def __init__(
        self,
        requests_per_minute: float = DEFAULT_REQUESTS_PER_MINUTE,
        *,
        burst: int = DEFAULT_BURST,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not requests_per_minute > 0:
            raise ValueError("requests_per_minute must be > 0")
        if burst < 1:
            raise ValueError("burst must be >= 1")
        self.requests_per_minute = float(requests_per_minute)
        self.burst = int(burst)
        self._interval = 0.0 if math.isinf(requests_per_minute) else 60.0 / requests_per_minute
        # How far ahead of "now" the schedule may run before callers must wait.
        self._tolerance = (self.burst - 1) * self._interval
        self._clock = clock
        self._sleep = sleep
        self._async_sleep = async_sleep
        self._lock = threading.Lock()
        self._tat: float | None = None  # theoretical arrival time of the next request

    def __repr__(self) -> str:
        return f"RequestPacer(requests_per_minute={self.requests_per_minute:g}, burst={self.burst})"

    @property
    def interval(self) -> float:
        """Seconds between requests at the steady rate."""
        return self._interval

    def reserve(self) -> float:
        """Claim the next slot and return how many seconds the caller must wait for it.

        The slot is taken even if the caller then does not wait; callers should use
        ``acquire`` / ``acquire_async`` unless they sleep themselves.
        """
        if self._interval == 0.0:
            return 0.0
        with self._lock:
            delay, self._tat = self._next_slot(self._tat, self._clock())
            return delay

    def _next_slot(self, tat: float | None, now: float) -> tuple[float, float]:
        """GCRA: (wait before the claimed slot, the next theoretical arrival time)."""
        tat = now if tat is None or tat < now else tat
        return max(0.0, tat - self._tolerance - now), tat + self._interval

    def acquire(self) -> float:
        """Block (``time.sleep``) until this caller may send a request; return the wait."""
        delay = self.reserve()
        if delay > 0:
            self._sleep(delay)
        return delay

    # Whether `reserve` may block on I/O (a file lock, a database round trip): then the
    # async path reserves in a worker thread, so a slow store never stalls the event loop.
    reserve_blocks = False

    async def acquire_async(self) -> float:
        """Await (``asyncio.sleep``) until this caller may send a request; return the wait."""
        delay = await asyncio.to_thread(self.reserve) if self.reserve_blocks else self.reserve()
        if delay > 0:
            await self._async_sleep(delay)
        return delay


def budget_key(token: str) -> str:
    """The name a token's budget is stored under: a hash, so the file never holds the token."""
    return hashlib.sha256(b"siro-rate-budget\0" + token.encode()).hexdigest()[:32]


class SharedRequestPacer(RequestPacer):
    """A ``RequestPacer`` whose schedule lives in ``path``, shared by every process using it.

    ``key`` names the budget (use ``budget_key(token)``: Siro's limit is per token). The
    clock must mean the same in every process, so it defaults to the wall clock; a stored
    schedule implausibly far ahead of it (a clock stepped back, a copied file) is reset
    rather than obeyed. Waiting happens outside the file lock, as with ``RequestPacer``.
    """

    reserve_blocks = True  # waits on the file's write lock (up to `lock_timeout`)


    # No honest queue of waiting callers runs this far ahead of now.
    MAX_AHEAD_SECONDS = 600.0

    def __init__(
        self,
        path: str | os.PathLike[str],
        key: str,
        requests_per_minute: float = DEFAULT_REQUESTS_PER_MINUTE,
        *,
        burst: int = DEFAULT_BURST,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        lock_timeout: float = 30.0,
    ) -> None:
        super().__init__(requests_per_minute, burst=burst, clock=clock, sleep=sleep, async_sleep=async_sleep)
        if not key:
            raise ValueError("key must be non-empty")
        self.path = os.fspath(path)
        self.key = key
        self._lock_timeout = lock_timeout
        self._con: sqlite3.Connection | None = None
        self._con_pid: int | None = None

    def __repr__(self) -> str:
        return (
            f"SharedRequestPacer(path={self.path!r}, requests_per_minute={self.requests_per_minute:g}, "
            f"burst={self.burst})"
        )

    def _connection(self) -> sqlite3.Connection:
        # Called with the thread lock held. A connection must not cross a fork.
        if self._con is None or self._con_pid != os.getpid():
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            con = sqlite3.connect(
                self.path, timeout=self._lock_timeout, isolation_level=None, check_same_thread=False
            )
            # Losing the schedule in an OS crash costs at most one burst: skip fsyncs.
            con.execute("PRAGMA synchronous = OFF")
            con.execute("CREATE TABLE IF NOT EXISTS budgets (key TEXT PRIMARY KEY, tat REAL NOT NULL)")
            self._con, self._con_pid = con, os.getpid()
        return self._con

    def reserve(self) -> float:
        """Claim the next slot of the shared budget; return how long to wait for it."""
        if self._interval == 0.0:
            return 0.0
        with self._lock:
            con = self._connection()
            # IMMEDIATE takes the file's write lock before reading, so the read-modify-write
            # is atomic across processes; other processes wait (busy timeout) meanwhile.
            con.execute("BEGIN IMMEDIATE")
            try:
                now = self._clock()
                row = con.execute("SELECT tat FROM budgets WHERE key = ?", [self.key]).fetchone()
                tat = row[0] if row else None
                if tat is not None and tat > now + self.MAX_AHEAD_SECONDS:
                    tat = None
                delay, new_tat = self._next_slot(tat, now)
                con.execute(
                    "INSERT INTO budgets (key, tat) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET tat = excluded.tat",
                    [self.key, new_tat],
                )
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            return delay

    def close(self) -> None:
        """Close this process's connection to the budget file (reopened on next use)."""
        with self._lock:
            if self._con is not None and self._con_pid == os.getpid():
                self._con.close()
            self._con = None


_default_pacer: RequestPacer | None = None
_default_lock = threading.Lock()


def default_pacer() -> RequestPacer:
    """The process-wide pacer used by clients created without an explicit one.

    Shared because the API's limit is per token, not per client object.
    """
    global _default_pacer
    with _default_lock:
        if _default_pacer is None:
            _default_pacer = RequestPacer()
        return _default_pacer
