"""The single-resource endpoints are written once (`api_client.endpoints`) and sent alike by both clients."""

from __future__ import annotations

import asyncio
import math

import httpx
import pytest

from siro_assets.api_client import AsyncSiroClient, RequestPacer, RetryPolicy, SiroClient, endpoints

TOKEN = "fake-test-token-not-a-secret"
BASE = "https://siro.test/api-externalApi"
RECORDING = {"id": "a/b c", "organizationId": "org_1", "userId": "user_1", "title": "Call",
             "durationInMilliseconds": 1000, "latitude": 1.5, "longitude": 2.5, "result": "OPEN",
             "createdAt": "2026-01-15T12:00:00.000Z", "updatedAt": "2026-01-15T12:00:00.000Z",
             "deleted": False, "links": {"web": {"self": "https://app.siro.ai/r/1"}}, "unknownField": 1}
IDENTITY = {"organizationId": "org_1", "tokenId": "tok_1", "tokenName": "warehouse"}
SUMMARIES = {"data": [{"id": "s1", "name": "Recap", "content": "ok"}]}


def test_an_endpoint_is_its_request_and_its_result_without_io():
    call = endpoints.recording("a/b c", show_summary=True)
    assert call.path == "/v1/core/recordings/a%2Fb%20c"
    assert call.params == {"showCrmLinks": "false", "showSummary": "true", "showEntityExtractions": "false",
                           "showEvaluationScore": "false", "showFollowups": "false"}
    assert call.shape({"data": RECORDING}) is None and call.shape([]) is not None
    assert call.result({"data": RECORDING}).id == "a/b c"
    assert endpoints.recording_json("r").result({"data": RECORDING}) == RECORDING
    assert endpoints.summaries("r").path == "/v1/core/recordings/r/summaries"
    assert [s.name for s in endpoints.summaries("r").result(SUMMARIES)] == ["Recap"]
    assert endpoints.caller_identity().params == {}
    with pytest.raises(TypeError):
        endpoints.recording("r", show_everything=True)


def _handler(seen: list[tuple[str, dict]]):
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.raw_path.decode().split("?")[0], dict(request.url.params)))
        path = request.url.path
        if path.endswith("/caller-identity"):
            return httpx.Response(200, json=IDENTITY)
        if path.endswith("/summaries"):
            return httpx.Response(200, json=SUMMARIES)
        return httpx.Response(200, json=RECORDING)
    return handle


async def _async_calls(transport) -> list:
    async with AsyncSiroClient(TOKEN, BASE, transport=transport, pacer=RequestPacer(math.inf),
                               retry=RetryPolicy(max_attempts=1)) as c:
        return [await c.caller_identity(), await c.get_recording("a/b c", show_crm_links=True),
                await c.get_summaries("a/b c")]


def test_both_clients_send_the_same_requests_and_make_the_same_results():
    sync_seen: list = []
    async_seen: list = []
    with SiroClient(TOKEN, BASE, transport=httpx.MockTransport(_handler(sync_seen)),
                    pacer=RequestPacer(math.inf), retry=RetryPolicy(max_attempts=1)) as c:
        sync_results = [c.caller_identity(), c.get_recording("a/b c", show_crm_links=True),
                        c.get_summaries("a/b c")]
    async_results = asyncio.run(_async_calls(httpx.MockTransport(_handler(async_seen))))
    assert sync_seen == async_seen and len(sync_seen) == 3
    assert sync_seen[1] == ("/api-externalApi/v1/core/recordings/a%2Fb%20c",
                            endpoints.recording("x", show_crm_links=True).params)
    assert sync_results == async_results
