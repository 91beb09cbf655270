"""The fetch loop: split windows give exactly the rows of a sequential walk, at the
request cost of big pages, with parsing off the event loop behind a bounded queue."""

from __future__ import annotations

import asyncio
import math
import threading
from datetime import date, datetime, timedelta, timezone

import httpx
import pytest

from siro_assets.api_client import AsyncSiroClient, RequestPacer, RetryPolicy, created_window
from siro_assets.pipeline.ingest import fetch_days
from siro_assets.pipeline.ingest.concurrency import littles_law_concurrency
from siro_assets.pipeline.ingest.fetch_days import stage_days
from siro_assets.changes.listing_windows import DAY_MS, WindowWalk, day_runs, from_ms, to_ms
from siro_assets.simulator import FixedClock, SimulatorApi, SimulatorTransport, World, WorldConfig
from siro_assets.warehouse.staging import RecordingsStage

NOW = datetime(2026, 3, 20, tzinfo=timezone.utc)
DAYS = [date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4), date(2026, 3, 6)]
WORLD = World(WorldConfig(recordings_per_day=300))


def _api(page_size_cap: int) -> SimulatorApi:
    return SimulatorApi(WORLD, FixedClock(NOW), page_size_cap=page_size_cap)


def _client(transport) -> AsyncSiroClient:
    return AsyncSiroClient("test-token", "http://sim", transport=transport,
                           pacer=RequestPacer(math.inf), retry=RetryPolicy(max_attempts=2, initial_backoff=0))


def _fetch(transport, stage, days=DAYS, **kwargs):
    async def go():
        async with _client(transport) as client:
            return await stage_days(client, stage, days, **kwargs)

    return asyncio.run(go())


def _staged_rows(transport, days=DAYS, **kwargs):
    with RecordingsStage() as stage:
        report = _fetch(transport, stage, days, **kwargs)
        summary = stage.finalize(days)
        rows = stage._con.execute(
            "SELECT id, updated_at, payload::VARCHAR FROM recordings ORDER BY id"
        ).fetchall()
    return report, summary, rows


def _truth_ids(days) -> list[str]:
    ids = []
    for day in days:
        start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        ids += [r["id"] for r in WORLD.recordings(NOW, created_from=start, created_to=start + timedelta(days=1))]
    return sorted(ids)


def test_split_windows_stage_exactly_the_rows_of_a_sequential_walk():
    concurrent_report, concurrent, rows = _staged_rows(SimulatorTransport(_api(20)), concurrency=8)
    sequential_report, sequential, sequential_rows = _staged_rows(SimulatorTransport(_api(20)), concurrency=1)
    assert concurrent_report.splits > 0, "the long listing should have been split"
    assert sequential_report.splits == 0 and sequential_report.windows == 2  # 2-4 March, then 6 March
    assert rows == sequential_rows
    assert [r[0] for r in rows] == _truth_ids(DAYS)  # every recording once, edges included
    assert concurrent.rows == sequential.rows == len(rows)


def test_a_backfill_costs_at_most_5_percent_more_requests_than_full_pages():
    api = _api(20)
    report, summary, _ = _staged_rows(SimulatorTransport(api), concurrency=8)
    ideal = math.ceil(summary.rows / 20)
    assert report.served_page_size == 20 and report.asked_page_size == 1000
    assert api.request_count <= 1.05 * ideal, (api.request_count, ideal)


def test_page_size_falls_back_when_the_server_refuses_it():
    api = _api(500)

    class RefusesBigPages(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if int(request.url.params.get("pageSize", "0")) > 250:
                return httpx.Response(400, json={"message": "pageSize must be <= 250"}, request=request)
            return await SimulatorTransport(api).handle_async_request(request)

    report, summary, _ = _staged_rows(RefusesBigPages(), days=DAYS[:1], concurrency=2)
    assert report.asked_page_size == 250 and report.served_page_size == 250
    assert summary.rows == len(_truth_ids(DAYS[:1]))


class _SpyStage:
    """A stage that notes which thread parses and how far the fetch ran ahead of it."""

    def __init__(self, api: SimulatorApi, real: RecordingsStage) -> None:
        self.api = api
        self.real = real
        self.threads: set[int] = set()
        self.staged = 0
        self.ahead = 0
        self.batches: list[tuple[int, int]] = []

    def add_pages(self, bodies):
        self.threads.add(threading.get_ident())
        self.batches.append((len(bodies), sum(len(b) for b in bodies)))
        self.staged += len(bodies)
        self.ahead = max(self.ahead, self.api.request_count - self.staged)
        return self.real.add_pages(bodies)


def test_pages_are_parsed_off_the_event_loop_behind_a_bounded_queue(monkeypatch):
    monkeypatch.setattr(fetch_days, "BATCH_BYTES", 40_000)
    api = _api(5)
    loop_threads = set()

    async def go(spy):
        loop_threads.add(threading.get_ident())
        async with _client(SimulatorTransport(api)) as client:
            return await stage_days(client, spy, DAYS[:2], concurrency=4)

    with RecordingsStage() as real:
        spy = _SpyStage(api, real)
        report = asyncio.run(go(spy))
    assert spy.staged == report.pages > 50
    assert loop_threads.isdisjoint(spy.threads)
    # Pages asked for but not yet staged: per worker, one waiting for its verdict and
    # the one read ahead meanwhile.
    assert spy.ahead <= 2 * report.max_concurrency
    # A batch is bounded in bytes too (DuckDB's parse of it must fit the stage's memory).
    assert all(n == 1 or size <= 40_000 for n, size in spy.batches)
    assert max(n for n, _ in spy.batches) <= fetch_days.BATCH_PAGES


def test_a_walk_stops_at_its_split_point_only_when_pages_come_in_created_order():
    walk = WindowWalk(0, 1000)
    walk.observe([10, 20, 30])
    walk.stop_at = 35
    assert not walk.should_stop()
    walk.observe([31, 40])
    assert walk.should_stop()

    unordered = WindowWalk(0, 1000)
    unordered.observe([50, 10])
    unordered.stop_at = 40
    unordered.observe([60, 70])
    assert not unordered.should_stop(), "without createdAt order the walk must run to its end"
    assert unordered.records_left() == 0  # and is never split


def test_day_runs_cover_consecutive_days_as_one_window():
    runs = day_runs([date(2026, 1, 2), date(2026, 1, 1), date(2026, 1, 4)])
    assert [(from_ms(a), b - a) for a, b in runs] == [
        (datetime(2026, 1, 1, tzinfo=timezone.utc), 2 * DAY_MS),
        (datetime(2026, 1, 4, tzinfo=timezone.utc), DAY_MS),
    ]
    assert to_ms(datetime(2026, 1, 1, 0, 0, 0, 999, tzinfo=timezone.utc)) == runs[0][0]
    fortnight = day_runs([date(2026, 1, 1) + timedelta(days=i) for i in range(15)], max_days=7)
    assert [(b - a) // DAY_MS for a, b in fortnight] == [7, 7, 1]
    assert all(a[1] == b[0] for a, b in zip(fortnight, fortnight[1:]))


@pytest.mark.parametrize(
    "rate, latency, cap, expected",
    [(950, 0.3, 16, 7), (950, 0.05, 16, 2), (950, 5.0, 16, 16), (math.inf, 0.3, 9, 9), (60, 0.0, 16, 1)],
)
def test_concurrency_follows_littles_law(rate, latency, cap, expected):
    assert littles_law_concurrency(rate, latency, cap) == expected


def test_a_split_hands_over_exactly_at_the_split_point():
    from siro_assets.changes.listing_windows import WindowPlanner

    planner = WindowPlanner([date(2026, 3, 2)])
    walk = planner.next_window()
    planner.note_full_page(10)
    walk.observe([walk.start + 60_000 * i for i in range(1, 11)])  # 10 records in 10 minutes
    far = planner.next_window()
    assert far is not None and far.start == walk.stop_at and far.end == walk.end
    assert walk.last_created < walk.stop_at
    walk.observe([far.start - 1])
    assert not walk.should_stop()  # still short of the split point
    walk.observe([far.start])  # the split point itself is the far window's too
    assert walk.should_stop()


def test_the_client_parses_big_pages_off_the_event_loop(monkeypatch):
    from siro_assets.api_client import async_client

    parse_threads, loop_threads = set(), set()
    real_shape = async_client.list_page_shape

    def spy_shape(obj):
        parse_threads.add(threading.get_ident())
        return real_shape(obj)

    monkeypatch.setattr(async_client, "list_page_shape", spy_shape)

    async def go():
        loop_threads.add(threading.get_ident())
        async with _client(SimulatorTransport(_api(1000))) as client:
            start = datetime(2026, 3, 2, tzinfo=timezone.utc)
            query = created_window(start, start + timedelta(days=1), page_size=100, **fetch_days.ENRICHMENT)
            page = await client.aiter_recording_pages(query).__anext__()
            assert len(page.body) >= async_client.PARSE_OFF_LOOP_BYTES

    asyncio.run(go())
    assert parse_threads and parse_threads.isdisjoint(loop_threads)
