"""SiroClient / AsyncSiroClient against httpx.MockTransport handlers (no network, no sleeps)."""

from __future__ import annotations

import ast
import asyncio
import json
import logging
import math
import traceback
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from siro_assets.api_client import (
    DEFAULT_BASE_URL,
    AsyncSiroClient,
    CallerIdentity,
    Page,
    RecordingsQuery,
    RequestPacer,
    RetryPolicy,
    SiroAuthError,
    SiroBadRequestError,
    SiroClient,
    SiroError,
    SiroMalformedResponseError,
    SiroNotFoundError,
    SiroUnavailableError,
    created_window,
)

TOKEN = "fake-test-token-not-a-secret"
BASE = "https://siro.test/api-externalApi"
FAST = RetryPolicy(max_attempts=4, initial_backoff=0, max_backoff=0)
LIST_PATH = "/api-externalApi/v1/core/recordings"


def no_pacing() -> RequestPacer:
    return RequestPacer(math.inf)


def client(handler, **kwargs) -> SiroClient:
    kwargs.setdefault("pacer", no_pacing())
    kwargs.setdefault("retry", FAST)
    return SiroClient(TOKEN, BASE, transport=httpx.MockTransport(handler), **kwargs)


def aclient(handler, **kwargs) -> AsyncSiroClient:
    kwargs.setdefault("pacer", no_pacing())
    kwargs.setdefault("retry", FAST)
    return AsyncSiroClient(TOKEN, BASE, transport=httpx.MockTransport(handler), **kwargs)


def assert_token_free(exc: BaseException) -> None:
    """The token must not leak via str/repr of the error or anything chained to it."""
    rendered = "".join(traceback.format_exception(exc))
    assert TOKEN not in rendered
    seen = exc
    while seen is not None:
        assert TOKEN not in str(seen) and TOKEN not in repr(seen)
        for arg in seen.args:
            assert TOKEN not in repr(arg)
        seen = seen.__cause__ or seen.__context__


def recording(i: int, **extra) -> dict:
    payload = {
        "id": f"rec_{i}",
        "organizationId": "org_1",
        "userId": "user_1",
        "title": f"Call {i}",
        "durationInMilliseconds": 1000 * i,
        "latitude": 1.5,
        "longitude": 2.5,
        "result": "OPEN",
        "createdAt": "2026-01-15T12:00:00.000Z",
        "updatedAt": "2026-01-15T12:00:00.000Z",
        "deleted": False,
        "links": {"web": {"self": f"https://app.siro.ai/r/{i}"}},
    }
    payload.update(extra)
    return payload


class PagedServer:
    """Serves `total` recordings, capping page size at `cap` whatever the client asks."""

    def __init__(self, total: int, cap: int = 3, *, last_cursor: str = "null") -> None:
        self.records = [recording(i) for i in range(total)]
        self.cap = cap
        self.last_cursor = last_cursor  # "null" or "missing"
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        assert request.url.path == LIST_PATH
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        size = min(int(request.url.params["pageSize"]), self.cap)
        offset = int(request.url.params.get("cursor", "opaque:0").split(":")[1])
        body: dict = {"data": self.records[offset : offset + size]}
        if offset + size < len(self.records):
            body["cursor"] = f"opaque:{offset + size}"
        elif self.last_cursor == "null":
            body["cursor"] = None
        return httpx.Response(200, json=body)


def scripted(*steps):
    """A handler that plays `steps` in order, repeating the last one.

    Each step is an int status (JSON error body), an exception instance to raise,
    bytes (a 200 body) or a dict/list (a 200 JSON body).
    """
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        step = steps[min(len(calls), len(steps) - 1)]
        calls.append(request)
        if isinstance(step, BaseException):
            raise step
        if isinstance(step, int):
            return httpx.Response(step, json={"message": f"status {step}"})
        if isinstance(step, bytes):
            return httpx.Response(200, content=step, headers={"content-type": "application/json"})
        return httpx.Response(200, json=step)

    handler.calls = calls  # type: ignore[attr-defined]
    return handler


EMPTY_PAGE = {"data": [], "cursor": None}
IDENTITY = {
    "tokenId": "tok_1",
    "tokenName": "warehouse",
    "organizationId": "org_1",
    "authorizedOrgGroupId": None,
    "parentOrgGroupTokenId": None,
    "createdAt": "2025-01-01T00:00:00.000Z",
    "createdBy": None,
}


# --- parameters on the wire -------------------------------------------------------


def test_every_filter_and_flag_is_serialized_as_strings():
    handler = scripted(EMPTY_PAGE)
    ts = datetime(2026, 1, 15, 4, 0, 0, 592000, tzinfo=UTC)
    query = RecordingsQuery(
        created_gt=ts,
        created_lt=ts.replace(hour=5),
        updated_gte=ts.replace(hour=6),
        updated_gt=ts.replace(hour=7),
        updated_lt=ts.replace(hour=8),
        updated_lte=ts.replace(hour=9),
        is_processing_done=True,
        is_entity_extraction_done=False,
        is_summary_done=True,
        show_crm_links=True,
        show_summary=True,
        show_entity_extractions=True,
        show_evaluation_score=True,
        show_followups=True,
        page_size=250,
    )
    with client(handler) as c:
        pages = list(c.iter_recording_pages(query))
    assert len(pages) == 1
    (request,) = handler.calls
    assert request.method == "GET"
    assert request.url.path == LIST_PATH
    assert dict(request.url.params) == {
        "createdAt:gt": "2026-01-15T04:00:00.592Z",
        "createdAt:lt": "2026-01-15T05:00:00.592Z",
        "updatedAt:gte": "2026-01-15T06:00:00.592Z",
        "updatedAt:gt": "2026-01-15T07:00:00.592Z",
        "updatedAt:lt": "2026-01-15T08:00:00.592Z",
        "updatedAt:lte": "2026-01-15T09:00:00.592Z",
        "isProcessingDone": "true",
        "isEntityExtractionDone": "false",
        "isSummaryDone": "true",
        "showCrmLinks": "true",
        "showSummary": "true",
        "showEntityExtractions": "true",
        "showEvaluationScore": "true",
        "showFollowups": "true",
        "pageSize": "250",
    }
    assert request.headers["authorization"] == f"Bearer {TOKEN}"


def test_default_query_sends_only_false_flags_and_page_size():
    assert RecordingsQuery().to_params() == {
        "showCrmLinks": "false",
        "showSummary": "false",
        "showEntityExtractions": "false",
        "showEvaluationScore": "false",
        "showFollowups": "false",
        "pageSize": "100",
    }


def test_created_window_boundaries_on_the_wire():
    handler = scripted(EMPTY_PAGE)
    day = datetime(2026, 1, 15, tzinfo=UTC)
    with client(handler) as c:
        list(c.iter_recording_pages(created_window(day, day.replace(day=16))))
    params = handler.calls[0].url.params
    assert params["createdAt:gt"] == "2026-01-14T23:59:59.999Z"
    assert params["createdAt:lt"] == "2026-01-16T00:00:00.000Z"


def test_default_base_url():
    assert DEFAULT_BASE_URL == "https://functions.siro.ai/api-externalApi"
    seen = []

    def handler(request):
        seen.append(str(request.url))
        return httpx.Response(200, json=IDENTITY)

    with SiroClient(TOKEN, transport=httpx.MockTransport(handler), pacer=no_pacing(), retry=FAST) as c:
        c.caller_identity()
    assert seen == ["https://functions.siro.ai/api-externalApi/v1/core/auth/caller-identity"]


# --- pagination -------------------------------------------------------------------


@pytest.mark.parametrize("last_cursor", ["null", "missing"])
def test_pagination_follows_cursor_with_capped_pages(last_cursor):
    server = PagedServer(total=7, cap=3, last_cursor=last_cursor)
    with client(server) as c:
        pages = list(c.iter_recording_pages(RecordingsQuery(page_size=100)))
        stats = c.stats
    assert [len(p.records) for p in pages] == [3, 3, 1]
    assert [p.cursor for p in pages] == ["opaque:3", "opaque:6", None]
    assert [r["id"] for p in pages for r in p.records] == [f"rec_{i}" for i in range(7)]
    assert all(isinstance(p, Page) and json.loads(p.body)["data"] == p.records for p in pages)
    assert [r.url.params.get("cursor") for r in server.requests] == [None, "opaque:3", "opaque:6"]
    # filters are repeated on every page request
    assert all(r.url.params["pageSize"] == "100" for r in server.requests)
    assert (stats.pages, stats.requests, stats.retries) == (3, 3, 0)
    assert stats.bytes == sum(len(p.body) for p in pages)


def test_empty_page_with_cursor_is_followed():
    handler = scripted({"data": [], "cursor": "c1"}, {"data": [recording(1)], "cursor": None})
    with client(handler) as c:
        records = [r for p in c.iter_recording_pages(RecordingsQuery()) for r in p.records]
    assert [r["id"] for r in records] == ["rec_1"]


def test_repeated_cursor_stops_instead_of_looping_forever():
    handler = scripted({"data": [recording(1)], "cursor": "same"})
    with client(handler) as c, pytest.raises(SiroMalformedResponseError, match="already followed") as info:
        list(c.iter_recording_pages(RecordingsQuery()))
    assert len(handler.calls) == 2
    assert_token_free(info.value)


def test_iter_recordings_yields_typed_models():
    server = PagedServer(total=5, cap=2)
    with client(server) as c:
        recs = list(c.iter_recordings(RecordingsQuery()))
    assert [r.id for r in recs] == [f"rec_{i}" for i in range(5)]
    assert recs[0].created_at == datetime(2026, 1, 15, 12, tzinfo=UTC)


# --- non-retryable errors ---------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
def test_auth_errors_are_not_retried_and_explain_the_token(status):
    def handler(request):
        handler.n += 1
        # A server echoing the bad token back must not make us leak it.
        return httpx.Response(status, json={"message": f"Invalid token {TOKEN}"})

    handler.n = 0
    with client(handler) as c, pytest.raises(SiroAuthError) as info:
        c.caller_identity()
    assert handler.n == 1
    assert c.stats.retries == 0
    msg = str(info.value)
    assert "organization integration token" in msg and "SIRO_API_TOKEN" in msg
    assert "API Tokens" in msg and "OAuth" in msg
    assert info.value.status_code == status
    assert_token_free(info.value)


def test_not_found():
    handler = scripted(404)
    with client(handler) as c, pytest.raises(SiroNotFoundError) as info:
        c.get_recording("nope")
    assert len(handler.calls) == 1
    assert "/v1/core/recordings/nope" in str(info.value)
    assert_token_free(info.value)


def test_bad_request_carries_the_server_message():
    def handler(request):
        return httpx.Response(400, json={"message": "createdAt:gt must be an ISO 8601 date"})

    with client(handler) as c, pytest.raises(SiroBadRequestError) as info:
        list(c.iter_recording_pages(RecordingsQuery()))
    assert info.value.server_message == "createdAt:gt must be an ISO 8601 date"
    assert "createdAt:gt must be an ISO 8601 date" in str(info.value)
    assert_token_free(info.value)


def test_unexpected_status_is_a_plain_siro_error():
    with client(scripted(418)) as c, pytest.raises(SiroError) as info:
        c.caller_identity()
    assert type(info.value) is SiroError and info.value.status_code == 418


# --- retries ----------------------------------------------------------------------


def test_429_burst_then_success_is_retried_and_counted():
    handler = scripted(429, 429, EMPTY_PAGE)
    with client(handler) as c:
        assert [p.records for p in c.iter_recording_pages(RecordingsQuery())] == [[]]
        s = c.stats
    assert (s.requests, s.retries, s.rate_limited, s.server_errors, s.pages) == (3, 2, 2, 0, 1)


def test_5xx_burst_then_success_is_retried_and_counted():
    handler = scripted(500, 502, 503, IDENTITY)
    with client(handler) as c:
        assert c.caller_identity().organization_id == "org_1"
        s = c.stats
    assert (s.requests, s.retries, s.rate_limited, s.server_errors) == (4, 3, 0, 3)


def test_retries_are_bounded_and_the_error_names_the_request():
    handler = scripted(503)
    query = created_window(datetime(2026, 1, 15, tzinfo=UTC), datetime(2026, 1, 16, tzinfo=UTC))
    with client(handler) as c, pytest.raises(SiroUnavailableError) as info:
        list(c.iter_recording_pages(query))
    assert len(handler.calls) == FAST.max_attempts
    assert c.stats.retries == FAST.max_attempts - 1
    assert c.stats.server_errors == FAST.max_attempts
    msg = str(info.value)
    assert "GET /v1/core/recordings" in msg
    assert "createdAt:gt=2026-01-14T23:59:59.999Z" in msg
    assert "4 attempts" in msg and "503" in msg
    assert_token_free(info.value)


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ReadError("connection reset by peer"),
        httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
        httpx.ConnectError("connection refused"),
        httpx.ReadTimeout("timed out"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_transport_errors_are_retried(exc):
    handler = scripted(exc, exc, IDENTITY)
    with client(handler) as c:
        assert c.caller_identity().token_id == "tok_1"
    assert len(handler.calls) == 3 and c.stats.retries == 2


def test_transport_errors_exhausted_become_unavailable_with_cause():
    handler = scripted(httpx.RemoteProtocolError("Server disconnected without sending a response."))
    with client(handler) as c, pytest.raises(SiroUnavailableError) as info:
        c.get_summaries("rec_1")
    assert len(handler.calls) == 4
    assert isinstance(info.value.__cause__, httpx.RemoteProtocolError)
    assert "RemoteProtocolError" in str(info.value)
    assert "/v1/core/recordings/rec_1/summaries" in str(info.value)
    assert_token_free(info.value)


def test_truncated_json_is_retried_then_succeeds():
    full = json.dumps({"data": [recording(1)], "cursor": None}).encode()
    handler = scripted(full[: len(full) // 2], full)
    with client(handler) as c:
        pages = list(c.iter_recording_pages(RecordingsQuery()))
    assert pages[0].records[0]["id"] == "rec_1"
    assert pages[0].body == full
    assert c.stats.retries == 1


@pytest.mark.parametrize(
    "body",
    [
        b'{"data": [{"id": "rec_1"',  # truncated
        b"<html>502 Bad Gateway</html>",  # not JSON
        b"",
        b"[]",  # wrong top-level type
        b'{"cursor": null}',  # data missing
        b'{"data": "nope", "cursor": null}',
        b'{"data": [1, 2], "cursor": null}',
        b'{"data": [], "cursor": 17}',
    ],
)
def test_malformed_list_pages_are_retried_then_raise(body):
    handler = scripted(body)
    with client(handler) as c, pytest.raises(SiroMalformedResponseError) as info:
        list(c.iter_recording_pages(RecordingsQuery()))
    assert len(handler.calls) == FAST.max_attempts
    assert c.stats.retries == FAST.max_attempts - 1
    assert "GET /v1/core/recordings" in str(info.value)
    assert_token_free(info.value)


@pytest.mark.parametrize("body", [{"message": "ok"}, [1, 2], "text"])
def test_malformed_summaries(body):
    with client(scripted(body)) as c, pytest.raises(SiroMalformedResponseError):
        c.get_summaries("r")


@pytest.mark.parametrize("body", [{"data": []}, [recording(1)], None])
def test_malformed_recording(body):
    with client(scripted(json.dumps(body).encode())) as c, pytest.raises(SiroMalformedResponseError):
        c.get_recording("r")


def test_enveloped_single_resources_are_tolerated():
    with client(scripted({"data": recording(2)})) as c:
        assert c.get_recording("rec_2").id == "rec_2"
    with client(scripted({"data": [{"id": "s", "name": "n", "content": "c"}]})) as c:
        assert [s.id for s in c.get_summaries("rec_2")] == ["s"]


def test_every_attempt_goes_through_the_pacer():
    reservations = []

    class CountingPacer(RequestPacer):
        def reserve(self):
            reservations.append(1)
            return 0.0

    handler = scripted(500, httpx.ReadError("x"), 429, EMPTY_PAGE)
    with client(handler, pacer=CountingPacer(60)) as c:
        list(c.iter_recording_pages(RecordingsQuery()))
    assert len(reservations) == 4 == c.stats.requests


def test_backoff_grows_exponentially_with_bounded_jitter():
    policy = RetryPolicy(max_attempts=10, initial_backoff=0.5, max_backoff=30.0)
    wait = policy.wait()
    for n in range(1, 10):
        w = wait(SimpleNamespace(attempt_number=n))
        base = 0.5 * 2 ** (n - 1)
        # Jitter is added after the cap, so capped waits still spread out.
        assert min(base, 30.0) <= w <= min(base, 30.0) + 0.5
    assert RetryPolicy(initial_backoff=0, max_backoff=0).backoff(5) == 0


@pytest.mark.parametrize("token", ["tok-with-newline\n", "  padded-token  "])
def test_whitespace_around_the_token_is_stripped(token):
    seen = []

    def handler(request):
        seen.append(request.headers["Authorization"])
        return httpx.Response(200, json={"data": [], "cursor": None})

    with SiroClient(token, "http://x", transport=httpx.MockTransport(handler), retry=FAST) as c:
        list(c.iter_recording_pages(RecordingsQuery()))
    assert seen == [f"Bearer {token.strip()}"]


@pytest.mark.parametrize("token", ["", "   ", "tok\x00en-secret", "tökén-secret"])
def test_a_token_no_header_can_carry_fails_at_once_without_echoing_it(token):
    with pytest.raises(SiroAuthError) as error:
        SiroClient(token, "http://x", transport=httpx.MockTransport(lambda r: None))
    if token.strip():
        assert token.strip() not in str(error.value)
    assert "SIRO_API_TOKEN" in str(error.value)


def test_501_is_final_not_retried():
    handler = scripted(501)
    with SiroClient("t0ken-abc", "http://x", transport=httpx.MockTransport(handler), retry=FAST) as c:
        with pytest.raises(SiroError, match="501"):
            list(c.iter_recording_pages(RecordingsQuery()))
    assert len(handler.calls) == 1


def test_retries_are_logged_at_warning_without_secrets(caplog):
    handler = scripted(500, EMPTY_PAGE)
    with caplog.at_level(logging.WARNING, logger="siro_assets.api_client"), client(handler) as c:
        list(c.iter_recording_pages(RecordingsQuery(show_crm_links=True)))
    records = [r for r in caplog.records if r.name == "siro_assets.api_client"]
    assert len(records) == 1 and records[0].levelno == logging.WARNING
    text = records[0].getMessage()
    assert "GET /v1/core/recordings" in text and "HTTP 500" in text and "attempt 1/4" in text
    assert TOKEN not in caplog.text and "Bearer" not in caplog.text


# --- single-resource endpoints ----------------------------------------------------


def test_get_recording_sends_flags_and_quotes_the_id():
    handler = scripted(recording(1, crm=None, summary=[]))
    with client(handler) as c:
        rec = c.get_recording("a/b c", show_crm_links=True, show_followups=True)
    assert rec.id == "rec_1" and rec.crm is None and rec.summary == []
    (request,) = handler.calls
    assert request.url.raw_path.split(b"?")[0] == b"/api-externalApi/v1/core/recordings/a%2Fb%20c"
    assert dict(request.url.params) == {
        "showCrmLinks": "true",
        "showSummary": "false",
        "showEntityExtractions": "false",
        "showEvaluationScore": "false",
        "showFollowups": "true",
    }


def test_get_summaries_and_caller_identity():
    def handler(request):
        if request.url.path.endswith("/summaries"):
            return httpx.Response(200, json=[{"id": "s1", "name": "Recap", "content": "ok"}])
        return httpx.Response(200, json=IDENTITY)

    with client(handler) as c:
        (section,) = c.get_summaries("rec_1")
        ident = c.caller_identity()
    assert (section.id, section.name, section.content) == ("s1", "Recap", "ok")
    assert isinstance(ident, CallerIdentity) and ident.token_name == "warehouse"


# --- token hygiene ----------------------------------------------------------------


def test_token_absent_from_repr_and_client_headers():
    c = client(scripted(IDENTITY))
    a = aclient(scripted(IDENTITY))
    for obj in (c, a):
        assert TOKEN not in repr(obj) and TOKEN not in str(obj)
        assert "authorization" not in obj._http.headers  # added per request by the auth object
        assert TOKEN not in repr(vars(obj))
    c.close()
    asyncio.run(a.aclose())


def test_client_module_imports_nothing_from_dagster():
    package = Path(__file__).resolve().parents[2] / "siro_assets" / "siro"
    for source in package.glob("*.py"):
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n.split(".")[0].startswith("dagster") for n in names), source


# --- async parity -----------------------------------------------------------------


def test_async_pagination_matches_sync():
    server = PagedServer(total=8, cap=3, last_cursor="missing")

    async def go():
        async with aclient(server) as c:
            pages = [p async for p in c.aiter_recording_pages(RecordingsQuery(show_summary=True))]
            recs = [r async for r in c.aiter_recordings(RecordingsQuery())]
            return pages, recs, c.stats

    pages, recs, stats = asyncio.run(go())
    assert [len(p.records) for p in pages] == [3, 3, 2]
    assert pages[-1].cursor is None
    assert [r.id for r in recs] == [f"rec_{i}" for i in range(8)]
    assert server.requests[0].url.params["showSummary"] == "true"
    assert stats.pages == 6 and stats.requests == 6


def test_async_retries_and_errors():
    async def go():
        async with aclient(scripted(429, 500, httpx.ReadError("reset"), IDENTITY)) as c:
            ident = await c.caller_identity()
            stats = c.stats
        async with aclient(scripted(401)) as c:
            with pytest.raises(SiroAuthError) as auth:
                await c.caller_identity()
            assert c.stats.requests == 1
        async with aclient(scripted(404)) as c:
            with pytest.raises(SiroNotFoundError):
                await c.get_recording("missing")
        async with aclient(scripted(b'{"data": [')) as c:
            with pytest.raises(SiroMalformedResponseError) as malformed:
                [p async for p in c.aiter_recording_pages(RecordingsQuery())]
        async with aclient(scripted(httpx.ConnectError("refused"))) as c:
            with pytest.raises(SiroUnavailableError) as unavailable:
                await c.get_summaries("r1")
            assert c.stats.requests == FAST.max_attempts
        return ident, stats, [auth.value, malformed.value, unavailable.value]

    ident, stats, errors = asyncio.run(go())
    assert ident.organization_id == "org_1"
    assert (stats.requests, stats.retries, stats.rate_limited, stats.server_errors) == (4, 3, 1, 1)
    for err in errors:
        assert_token_free(err)


def test_async_get_recording_and_summaries():
    def handler(request):
        if request.url.path.endswith("/summaries"):
            return httpx.Response(200, json=[])
        assert request.url.params["showEntityExtractions"] == "true"
        return httpx.Response(200, json=recording(3, entityExtractions=[{"name": "x", "value": 1, "mappings": None}]))

    async def go():
        async with aclient(handler) as c:
            return await c.get_recording("rec_3", show_entity_extractions=True), await c.get_summaries("rec_3")

    rec, summaries = asyncio.run(go())
    assert rec.entity_extractions[0].value == 1 and summaries == []
