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

Clock and sleep functions are injectable so tests can verify pacing on fake time.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Awaitable, Callable

__all__ = ["RequestPacer", "default_pacer", "DEFAULT_REQUESTS_PER_MINUTE", "DEFAULT_BURST"]

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
            now = self._clock()
            tat = now if self._tat is None or self._tat < now else self._tat
            delay = max(0.0, tat - self._tolerance - now)
            self._tat = tat + self._interval
            return delay

    def acquire(self) -> float:
        """Block (``time.sleep``) until this caller may send a request; return the wait."""
        delay = self.reserve()
        if delay > 0:
            self._sleep(delay)
        return delay

    async def acquire_async(self) -> float:
        """Await (``asyncio.sleep``) until this caller may send a request; return the wait."""
        delay = self.reserve()
        if delay > 0:
            await self._async_sleep(delay)
        return delay


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
