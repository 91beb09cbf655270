"""RequestPacer: shared GCRA budget, verified on fake time (no wall-clock sleeps)."""

from __future__ import annotations

import asyncio
import math
import threading

import httpx
import pytest

from siro_assets.api_client import AsyncSiroClient, RequestPacer, RetryPolicy, SiroClient


class FakeTime:
    """A monotonic clock that only moves when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)

    def pacer(self, rpm: float, burst: int = 10) -> RequestPacer:
        return RequestPacer(rpm, burst=burst, clock=self.clock, sleep=self.sleep, async_sleep=self.async_sleep)


def test_thousand_requests_at_600_per_minute_span_about_100_seconds():
    t = FakeTime()
    pacer = t.pacer(600, burst=10)
    start_times = []
    for _ in range(1000):
        pacer.acquire()
        start_times.append(t.now)
    # first `burst` go at once, then one every 0.1 s
    assert start_times[:10] == [0.0] * 10
    assert start_times[-1] == pytest.approx((1000 - 10) * 0.1)
    gaps = [b - a for a, b in zip(start_times[10:], start_times[11:])]
    assert all(g == pytest.approx(0.1) for g in gaps)


def test_idle_time_refills_burst_but_not_beyond_it():
    t = FakeTime()
    pacer = t.pacer(60, burst=3)  # one per second
    for _ in range(3):
        assert pacer.acquire() == 0
    assert pacer.acquire() == pytest.approx(1.0)
    t.now += 1000  # long idle
    waits = [pacer.acquire() for _ in range(5)]
    assert waits[:3] == [0, 0, 0]
    assert waits[3] == pytest.approx(1.0)
    assert waits[4] == pytest.approx(1.0)


def test_reservations_from_many_threads_get_distinct_slots():
    t = FakeTime()  # clock never advances: every reservation must queue behind the last
    pacer = t.pacer(600, burst=10)
    delays: list[float] = []
    lock = threading.Lock()

    def worker():
        mine = [pacer.reserve() for _ in range(50)]
        with lock:
            delays.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    expected = [0.0] * 10 + [i * 0.1 for i in range(1, 391)]
    assert sorted(delays) == pytest.approx(expected)


def test_one_budget_across_event_loops_in_different_threads():
    waits: list[float] = []
    lock = threading.Lock()

    async def record(seconds: float) -> None:
        with lock:
            waits.append(seconds)

    # A frozen clock makes every wait equal to the slot the caller got, so three loops
    # sharing one budget must receive 300 distinct consecutive slots.
    pacer = RequestPacer(600, burst=1, clock=lambda: 0.0, async_sleep=record)

    async def run(n: int) -> None:
        for _ in range(n):
            await pacer.acquire_async()

    threads = [threading.Thread(target=lambda: asyncio.run(run(100))) for _ in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(waits) == pytest.approx([i * 0.1 for i in range(1, 300)])


def test_infinite_rate_never_waits():
    pacer = RequestPacer(math.inf)
    assert all(pacer.acquire() == 0 for _ in range(10_000))


@pytest.mark.parametrize("kwargs", [{"requests_per_minute": 0}, {"requests_per_minute": -1}, {"burst": 0}])
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError):
        RequestPacer(**kwargs)


def test_pacer_shared_by_sync_and_async_clients_and_used_on_every_attempt():
    t = FakeTime()
    pacer = t.pacer(60, burst=1)  # one per (fake) second
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] % 2 == 1:  # every other attempt fails, so retries must be paced too
            return httpx.Response(500, json={"message": "boom"})
        return httpx.Response(200, json={"tokenId": "t", "tokenName": "n", "organizationId": "o"})

    retry = RetryPolicy(max_attempts=3, initial_backoff=0, max_backoff=0)
    with SiroClient("tok", "https://x.test", transport=httpx.MockTransport(handler), pacer=pacer, retry=retry) as c:
        c.caller_identity()
        c.caller_identity()

    async def go():
        async with AsyncSiroClient(
            "tok", "https://x.test", transport=httpx.MockTransport(handler), pacer=pacer, retry=retry
        ) as ac:
            await ac.caller_identity()

    asyncio.run(go())
    assert calls["n"] == 6
    # 6 paced attempts, the first free: the last one started 5 fake seconds in.
    assert t.now == pytest.approx(5.0)
    assert sum(t.sleeps) == pytest.approx(5.0)
