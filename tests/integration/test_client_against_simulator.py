"""The real Siro client (sync and async) through ``SimulatorTransport`` against the simulator.

Expected results are never taken from the API under test: they come from the simulated
world's own truth (``World.recordings(now, ...)`` full payloads and ``World.timeline(id)``
event schedules) and are filtered here with an independent implementation of the
documented semantics (createdAt:gt/lt exclusive, updatedAt:gte/lte inclusive, gt/lt
exclusive, string booleans, opt-in enrichment blocks, cursor pagination).

No real sleeping anywhere: pacing and rate limiting run on one fake monotonic clock.
"""

from __future__ import annotations

import asyncio
import math
import operator
import traceback
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest
import tenacity.nap

from siro_assets.simulator import FaultConfig, FixedClock, SimulatorApi, SimulatorTransport, World, WorldConfig
from siro_assets.simulator.world import ENRICHMENTS
from siro_assets.api_client import (
    DEFAULT_BASE_URL,
    AsyncSiroClient,
    RecordingsQuery,
    RequestPacer,
    RetryPolicy,
    SiroAuthError,
    SiroClient,
    SiroNotFoundError,
    SiroUnavailableError,
    created_window,
)

WORLD = World(WorldConfig())  # seed 7, ~40 recordings/day from 2026-01-01
# 14:45 on a Thursday: recordings created at 14:30..14:38 are still being processed.
NOW = datetime(2026, 1, 15, 14, 45, tzinfo=UTC)
FAST = RetryPolicy(max_attempts=3, initial_backoff=0, max_backoff=0)
TOKEN = "fake-sim-token-not-a-secret"

# query attribute -> wire flag -> payload block
FLAG_BLOCKS = {
    "show_crm_links": "crm",
    "show_summary": "summary",
    "show_entity_extractions": "entityExtractions",
    "show_evaluation_score": "evaluationScore",
    "show_followups": "followups",
}
ALL_FLAGS = {flag: True for flag in FLAG_BLOCKS}


# ---- truth, computed independently of the API under test ---------------------------------


def ts(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def truth(now: datetime = NOW, start: datetime | None = None, end: datetime | None = None) -> list[dict]:
    return WORLD.recordings(now, created_from=start, created_to=end)


def timeline_state(rid: str, now: datetime) -> tuple[datetime, set[str]]:
    """(updatedAt, kinds of events that happened) from the event schedule alone."""
    events = [(t, k) for t, k in WORLD.timeline(rid) if t <= now]
    return max(t for t, _ in events), {k for _, k in events}


def base_fields(payload: dict, *keep: str) -> dict:
    """The payload without enrichment blocks, except those named in ``keep``."""
    return {k: v for k, v in payload.items() if k not in ENRICHMENTS or k in keep}


_TIME_OPS = {
    "created_gt": ("createdAt", operator.gt),
    "created_lt": ("createdAt", operator.lt),
    "updated_gte": ("updatedAt", operator.ge),
    "updated_lte": ("updatedAt", operator.le),
    "updated_gt": ("updatedAt", operator.gt),
    "updated_lt": ("updatedAt", operator.lt),
}
_BOOL_EVENTS = {
    "is_processing_done": "processed",
    "is_entity_extraction_done": "extracted",
    "is_summary_done": "summarized",
}


def matches(query: RecordingsQuery, payload: dict, now: datetime = NOW) -> bool:
    """Documented filter semantics, evaluated on the world's truth (timeline for state)."""
    updated, kinds = timeline_state(payload["id"], now)
    values = {"createdAt": ts(payload["createdAt"]), "updatedAt": updated}
    for attr, (field, op) in _TIME_OPS.items():
        bound = getattr(query, attr)
        if bound is not None and not op(values[field], bound):
            return False
    for attr, kind in _BOOL_EVENTS.items():
        want = getattr(query, attr)
        if want is not None and (kind in kinds) != want:
            return False
    return True


def expected_for(query: RecordingsQuery, now: datetime = NOW) -> dict[str, dict]:
    keep = tuple(block for flag, block in FLAG_BLOCKS.items() if getattr(query, flag))
    return {p["id"]: base_fields(p, *keep) for p in truth(now) if matches(query, p, now)}


TRUTH = truth()


def _tied_value(field: str, since: datetime) -> datetime:
    """A recent timestamp that several records share (ties make inclusivity bugs visible)."""
    values = [p[field] for p in TRUTH if ts(p[field]) >= since]
    value, count = Counter(values).most_common(1)[0]
    assert count >= 2, f"no tied {field} in the world; pick another bound"
    return ts(value)


C_BOUND = _tied_value("createdAt", midnight(date(2026, 1, 14)))  # two recordings at 20:59:44.058
U_BOUND = _tied_value("updatedAt", midnight(date(2026, 1, 12)))  # a bulk CRM sync: ten at once


# ---- helpers ---------------------------------------------------------------------------------


def make_api(now: datetime = NOW, **kwargs) -> SimulatorApi:
    clock = kwargs.pop("clock", None) or FixedClock(now)
    return SimulatorApi(WORLD, clock, **kwargs)


def make_client(api: SimulatorApi, token: str = TOKEN, **kwargs) -> SiroClient:
    kwargs.setdefault("pacer", RequestPacer(math.inf))
    kwargs.setdefault("retry", FAST)
    return SiroClient(token, DEFAULT_BASE_URL, transport=SimulatorTransport(api), **kwargs)


def list_by_id(client: SiroClient, query: RecordingsQuery) -> dict[str, dict]:
    records = [r for page in client.iter_recording_pages(query) for r in page.records]
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)), "duplicate records in one listing"
    return {r["id"]: r for r in records}


class FakeMonotonic:
    """One fake monotonic clock for the pacer, the retry waits and the server's limiter."""

    def __init__(self) -> None:
        self.t = 1_000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        assert seconds >= 0
        self.t += seconds


# ---- 0. the truth itself is consistent (payload vs. timeline) -------------------------------


def test_truth_payloads_agree_with_timelines():
    assert len(TRUTH) > 400
    for p in TRUTH:
        updated, kinds = timeline_state(p["id"], NOW)
        assert ts(p["updatedAt"]) == updated
        assert p["isProcessingDone"] == ("processed" in kinds)
        assert p["isSummaryDone"] == ("summarized" in kinds)
        assert p["isEntityExtractionDone"] == ("extracted" in kinds)


# ---- 1. filters --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "attr, bound",
    [
        ("created_gt", C_BOUND),
        ("created_lt", C_BOUND),
        ("updated_gte", U_BOUND),
        ("updated_lte", U_BOUND),
        ("updated_gt", U_BOUND),
        ("updated_lt", U_BOUND),
    ],
)
def test_time_filter_at_an_actual_timestamp(attr, bound):
    field, op = _TIME_OPS[attr]
    at_bound = [p["id"] for p in TRUTH if ts(p[field]) == bound]
    assert len(at_bound) >= 2  # the bound really sits on records, so inclusivity matters
    query = RecordingsQuery(**{attr: bound})
    expected = expected_for(query)
    assert expected and len(expected) < len(TRUTH)

    with make_client(make_api()) as client:
        got = list_by_id(client, query)

    assert got == expected
    inclusive = op(bound, bound)
    for rid in at_bound:
        assert (rid in got) == inclusive, f"{attr} at {bound} must be {'in' if inclusive else 'ex'}clusive"


@pytest.mark.parametrize("attr", list(_BOOL_EVENTS))
@pytest.mark.parametrize("want", [True, False])
def test_boolean_filter(attr, want):
    query = RecordingsQuery(**{attr: want})
    expected = expected_for(query)
    # Both sides are populated at NOW, so a filter that is ignored or inverted fails.
    assert 0 < len(expected) < len(TRUTH)
    with make_client(make_api()) as client:
        got = list_by_id(client, query)
    assert got == expected
    wire = {"is_processing_done": "isProcessingDone", "is_entity_extraction_done": "isEntityExtractionDone",
            "is_summary_done": "isSummaryDone"}[attr]
    assert all(r[wire] is want for r in got.values())


def test_recent_recordings_are_still_processing_at_now():
    today = [p for p in TRUTH if ts(p["createdAt"]).date() == NOW.date()]
    assert any(not p["isProcessingDone"] for p in today)
    assert any(p["isProcessingDone"] and not p["isSummaryDone"] for p in today)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(created_gt=C_BOUND, updated_lte=U_BOUND + timedelta(days=1)),
        dict(created_gt=midnight(date(2026, 1, 15)), is_processing_done=True, is_summary_done=False),
        dict(created_gt=midnight(date(2026, 1, 14)), is_entity_extraction_done=False, is_summary_done=True),
        dict(updated_gte=U_BOUND, updated_lt=U_BOUND + timedelta(days=1), created_lt=C_BOUND + timedelta(days=1)),
        dict(updated_gt=U_BOUND, updated_lte=NOW, is_processing_done=True, show_crm_links=True),
    ],
    ids=["created-and-updated", "processed-not-summarized", "summarized-not-extracted",
         "updated-range-and-created", "updated-range-flag-enriched"],
)
def test_combined_filters(kwargs):
    query = RecordingsQuery(page_size=50, **kwargs)
    expected = expected_for(query)
    assert expected, "combined filter selects nothing: the case tests too little"
    with make_client(make_api()) as client:
        got = list_by_id(client, query)
    assert got == expected


# ---- 2. enrichment flags -----------------------------------------------------------------

ENRICH_WINDOW = (midnight(date(2026, 1, 13)), midnight(date(2026, 1, 16)))  # includes "today"


@pytest.mark.parametrize("flag", [None, *FLAG_BLOCKS])
def test_each_enrichment_block_only_with_its_flag(flag):
    start, end = ENRICH_WINDOW
    query = created_window(start, end, **({flag: True} if flag else {}))
    block = FLAG_BLOCKS.get(flag)
    expected = {p["id"]: base_fields(p, *([block] if block else [])) for p in truth(NOW, start, end)}

    with make_client(make_api()) as client:
        got = list_by_id(client, query)

    assert got == expected
    for other in ENRICHMENTS:
        if other != block:
            assert not any(other in r for r in got.values()), f"{other} sent without its flag"
    if block == "evaluationScore":  # present only for processed recordings that have one
        assert any(block in r for r in got.values())
    elif block is not None:
        assert all(block in r for r in got.values())


def test_all_enrichment_flags_give_the_exact_truth_payload():
    start, end = ENRICH_WINDOW
    expected = truth(NOW, start, end)
    with make_client(make_api()) as client:
        got = list_by_id(client, created_window(start, end, **ALL_FLAGS))
    assert got == {p["id"]: p for p in expected}
    # The window covers linked, unlinked, summarized and still-processing recordings.
    assert any(r["crm"] is None for r in got.values()) and any(r["crm"] for r in got.values())
    assert any(r["summary"] == [] for r in got.values()) and any(r["summary"] for r in got.values())


# ---- 3. created_window for a day ------------------------------------------------------------


def test_created_window_day_edges():
    day = date(2026, 1, 14)
    start, end = midnight(day), midnight(day + timedelta(days=1))
    at_midnight = [p["id"] for p in TRUTH if ts(p["createdAt"]) == start]
    next_midnight = [p["id"] for p in TRUTH if ts(p["createdAt"]) == end]
    last_ms = [p["id"] for p in TRUTH if ts(p["createdAt"]) == end - timedelta(milliseconds=1)]
    assert at_midnight and next_midnight and last_ms

    with make_client(make_api()) as client:
        ids = [r["id"] for page in client.iter_recording_pages(created_window(start, end)) for r in page.records]

    for rid in at_midnight + last_ms:
        assert ids.count(rid) == 1
    for rid in next_midnight:
        assert rid not in ids
    assert sorted(ids) == sorted(p["id"] for p in TRUTH if start <= ts(p["createdAt"]) < end)


def test_adjacent_day_windows_partition_the_truth():
    days = [date(2026, 1, 11) + timedelta(days=k) for k in range(4)]  # 11th..14th, all complete
    with make_client(make_api()) as client:
        windows = [
            set(list_by_id(client, created_window(midnight(d), midnight(d + timedelta(days=1)))))
            for d in days
        ]
    lo, hi = midnight(days[0]), midnight(days[-1] + timedelta(days=1))
    expected = {p["id"] for p in TRUTH if lo <= ts(p["createdAt"]) < hi}
    assert set().union(*windows) == expected
    assert sum(map(len, windows)) == len(expected)  # pairwise disjoint
    for a in range(len(windows)):
        for b in range(a + 1, len(windows)):
            assert not windows[a] & windows[b]
    for d, got in zip(days, windows):
        assert got == {p["id"] for p in truth(NOW, midnight(d), midnight(d + timedelta(days=1)))}


# ---- 4. server-capped page size ------------------------------------------------------------


def test_server_capped_page_size_is_followed_to_the_end():
    start, end = midnight(date(2026, 1, 14)), midnight(date(2026, 1, 15))
    api = make_api(page_size_cap=3)
    expected = {p["id"]: p for p in truth(NOW, start, end)}
    with make_client(api) as client:
        pages = list(client.iter_recording_pages(created_window(start, end, page_size=100, **ALL_FLAGS)))
        stats = client.stats

    assert all(len(page.records) <= 3 for page in pages)
    assert len(pages) == math.ceil(len(expected) / 3) > 10
    assert all(page.cursor for page in pages[:-1]) and pages[-1].cursor is None
    got = [r for page in pages for r in page.records]
    assert len(got) == len(expected)
    assert {r["id"]: r for r in got} == expected
    assert api.request_count == stats.requests == stats.pages == len(pages)


# ---- 5. consistency while the world moves between pages -----------------------------------


@pytest.mark.parametrize(
    "query",
    [
        created_window(midnight(NOW.date()), midnight(NOW.date() + timedelta(days=1)), page_size=4, **ALL_FLAGS),
        RecordingsQuery(updated_gte=NOW - timedelta(hours=20), page_size=4, **ALL_FLAGS),
    ],
    ids=["created-today", "updated-since"],
)
def test_walk_returns_the_snapshot_while_the_clock_advances(query):
    clock = FixedClock(NOW)
    api = make_api(clock=clock)
    snapshot = expected_for(query, NOW)
    later = NOW + timedelta(hours=2) * (math.ceil(len(snapshot) / 4) + 1)
    assert expected_for(query, later) != snapshot  # the world really moves during the walk

    records = []
    with make_client(api) as client:
        pages = client.iter_recording_pages(query)
        for page in pages:  # each next() sends the next request, after the clock moved
            records.extend(page.records)
            clock.advance(timedelta(hours=2))

    assert len(records) > 4 * 3  # several pages, several clock moves
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)), "duplicates in a walk over a moving world"
    assert {r["id"]: r for r in records} == snapshot


# ---- 6. pacing against the simulator's rate limiter on one fake clock ----------------------


def paced_run(requests_per_minute: float, burst: int, n: int, server_limit: int = 600):
    """n caller-identity requests through a pacer and the server's limiter on one fake clock.

    Returns (api, client stats, indices of requests answered 429, fake seconds elapsed).
    ``max_attempts=1`` so a 429 is surfaced instead of being retried away.
    """
    fake = FakeMonotonic()
    pacer = RequestPacer(requests_per_minute, burst=burst, clock=fake, sleep=fake.advance)
    api = make_api(faults=FaultConfig(rate_limit_per_minute=server_limit), monotonic=fake)
    t0 = fake()
    rejected = []
    with make_client(api, pacer=pacer, retry=RetryPolicy(max_attempts=1)) as client:
        for k in range(n):
            try:
                client.caller_identity()
            except SiroUnavailableError as exc:
                assert "429" in str(exc)
                rejected.append(k)
        stats = client.stats
    return api, stats, rejected, fake() - t0


@pytest.mark.parametrize(
    "requests_per_minute, burst, n",
    [
        (600, 10, 300),  # the brief's case: half a window at the server's own rate
        (600, 1, 300),
        # Several windows long. GCRA lets ``burst - 1`` extra requests into any 60 s window,
        # so against a 600-per-sliding-minute server the rate must leave that headroom.
        (590, 10, 1_300),
    ],
)
def test_pacer_within_the_server_limit_gets_no_429(requests_per_minute, burst, n):
    api, stats, rejected, elapsed = paced_run(requests_per_minute, burst, n)
    assert rejected == []
    assert api.rate_limited_count == 0 and not api.fault_count
    assert stats.requests == api.request_count == n and stats.rate_limited == 0 and stats.retries == 0
    # ``burst`` requests at once, then one per interval: the last leaves at (n - burst) intervals.
    assert elapsed == pytest.approx((n - burst) * 60 / requests_per_minute, abs=1e-6)


def test_full_rate_plus_burst_overruns_a_sliding_minute():
    # 600/min with burst 10 puts 609 requests into some 60 s window: request #600 (0-based),
    # sent at 59.1 s, finds the server's window still full of the first 600.
    api, stats, rejected, _ = paced_run(600, 10, 700)
    assert rejected and rejected[0] == 600
    assert stats.rate_limited == api.rate_limited_count == len(rejected)


def test_too_fast_pacer_exhausts_retries_with_an_error_naming_the_request():
    fake = FakeMonotonic()
    pacer = RequestPacer(6_000, burst=10, clock=fake, sleep=fake.advance)
    api = make_api(faults=FaultConfig(rate_limit_per_minute=600), monotonic=fake)
    with make_client(api, pacer=pacer, retry=RetryPolicy(max_attempts=3, initial_backoff=0, max_backoff=0)) as client:
        for _ in range(600):  # the server's whole budget, spent in ~6 s of fake time
            client.caller_identity()
        assert fake() - 1_000.0 < 60
        query = created_window(midnight(date(2026, 1, 14)), midnight(date(2026, 1, 15)))
        with pytest.raises(SiroUnavailableError) as excinfo:
            list(client.iter_recording_pages(query))
        stats = client.stats

    message = str(excinfo.value)
    assert "GET /v1/core/recordings" in message and "createdAt:gt=2026-01-13T23:59:59.999Z" in message
    assert "429" in message and "3 attempts" in message
    assert stats.rate_limited == api.rate_limited_count == 3
    assert stats.retries == 2


def test_too_fast_pacer_is_retried_through_on_the_fake_clock(monkeypatch):
    fake = FakeMonotonic()
    # tenacity's default sleep calls tenacity.nap's ``time.sleep``; the client has no sleep
    # hook, so point that at the fake clock (tenacity documents this as mockable).
    monkeypatch.setattr(tenacity.nap, "time", SimpleNamespace(sleep=fake.advance))
    pacer = RequestPacer(6_000, burst=10, clock=fake, sleep=fake.advance)
    api = make_api(faults=FaultConfig(rate_limit_per_minute=600), monotonic=fake)
    retry = RetryPolicy(max_attempts=12, initial_backoff=1.0, max_backoff=30.0)
    t0 = fake()
    with make_client(api, pacer=pacer, retry=retry) as client:
        for _ in range(700):
            client.caller_identity()
        stats = client.stats

    assert stats.rate_limited == api.rate_limited_count > 0
    assert stats.retries == stats.rate_limited
    assert stats.requests == api.request_count == 700 + stats.retries
    assert fake() - t0 >= 60  # request 601 could only pass once the first ones left the window


# ---- 7. random faults ---------------------------------------------------------------------


def test_random_faults_are_retried_and_the_listing_is_exact():
    faults = FaultConfig(error_rate=0.2, disconnect_rate=0.1, truncate_rate=0.1, seed=3)
    api = make_api(faults=faults)
    start, end = midnight(date(2026, 1, 9)), midnight(date(2026, 1, 15))
    expected = truth(NOW, start, end)
    with make_client(api, retry=RetryPolicy(max_attempts=10, initial_backoff=0, max_backoff=0)) as client:
        pages = list(client.iter_recording_pages(created_window(start, end, page_size=10, **ALL_FLAGS)))
        stats = client.stats

    assert len(pages) > 10
    got = [r for page in pages for r in page.records]
    assert len(got) == len(expected)
    assert {r["id"]: r for r in got} == {p["id"]: p for p in expected}
    assert stats.retries > 0
    assert {"disconnect", "truncate"} <= set(api.fault_count)
    assert stats.retries == sum(api.fault_count.values())  # each fault cost exactly one retry
    assert stats.requests == api.request_count


# ---- 8. async parity -----------------------------------------------------------------------


@pytest.mark.parametrize("day", [date(2026, 1, 14), NOW.date()])
def test_async_client_lists_the_same_day_as_the_sync_client(day):
    query = created_window(midnight(day), midnight(day + timedelta(days=1)), page_size=7, **ALL_FLAGS)
    api = make_api()
    with make_client(api) as client:
        sync_pages = [page.records for page in client.iter_recording_pages(query)]
        sync_typed = list(client.iter_recordings(query))

    async def go():
        async with AsyncSiroClient(TOKEN, DEFAULT_BASE_URL, transport=SimulatorTransport(api),
                                   pacer=RequestPacer(math.inf), retry=FAST) as aclient:
            pages = [page.records async for page in aclient.aiter_recording_pages(query)]
            typed = [r async for r in aclient.aiter_recordings(query)]
            return pages, typed

    async_pages, async_typed = asyncio.run(go())
    assert async_pages == sync_pages
    assert async_typed == sync_typed
    assert [r for page in async_pages for r in page] == truth(NOW, midnight(day), midnight(day + timedelta(days=1)))


# ---- 9. errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.caller_identity(),
        lambda c: list(c.iter_recording_pages(RecordingsQuery())),
        lambda c: c.get_recording(TRUTH[0]["id"]),
    ],
    ids=["caller-identity", "list", "get"],
)
def test_bad_token_is_an_auth_error_after_one_request(call):
    api = make_api(token="right")
    bad = "wrong-token-Kx9QpL2"
    with make_client(api, token=bad, retry=RetryPolicy(max_attempts=5, initial_backoff=0, max_backoff=0)) as client:
        with pytest.raises(SiroAuthError) as excinfo:
            call(client)
    assert api.request_count == 1
    assert excinfo.value.status_code == 401
    rendered = str(excinfo.value) + repr(excinfo.value) + "".join(traceback.format_exception(excinfo.value))
    assert bad not in rendered and "right" not in str(excinfo.value)


def test_future_recording_exists_in_world_but_not_at_now():
    future = next(p for p in truth(NOW + timedelta(days=1)) if ts(p["createdAt"]) > NOW)
    assert WORLD.recording(future["id"], NOW) is None
    with make_client(make_api()) as client:
        with pytest.raises(SiroNotFoundError):
            client.get_recording(future["id"])


@pytest.mark.parametrize(
    "rid",
    ["rec_20260114_9999_deadbeef", "rec_20260114_0000_00000000", "nope", "rec_20251231_0000_0123abcd"],
)
def test_unknown_recording_id_is_not_found(rid):
    assert WORLD.recording(rid, NOW) is None
    api = make_api()
    with make_client(api) as client:
        with pytest.raises(SiroNotFoundError) as excinfo:
            client.get_recording(rid)
        with pytest.raises(SiroNotFoundError):
            client.get_summaries(rid)
    assert excinfo.value.status_code == 404
    assert api.request_count == 2  # 404 is not retried


def test_get_recording_matches_truth():
    p = next(p for p in TRUTH if p["crm"] and p["summary"] and p["entityExtractions"])
    with make_client(make_api()) as client:
        rec = client.get_recording(p["id"], show_crm_links=True, show_summary=True, show_entity_extractions=True)
        summaries = client.get_summaries(p["id"])
    dumped = rec.model_dump(mode="json", by_alias=True, exclude_unset=True)
    assert dumped["id"] == p["id"] and ts(dumped["updatedAt"]) == ts(p["updatedAt"])
    assert dumped["crm"] == p["crm"] and dumped["summary"] == p["summary"]
    assert dumped["entityExtractions"] == p["entityExtractions"]
    assert [s.model_dump(by_alias=True) for s in summaries] == p["summary"]
