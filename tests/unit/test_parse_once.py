"""Pages are parsed once, by the stage: the client reads only the cursor, and a body the
stage refuses is fetched again, never half-staged."""

from __future__ import annotations

import asyncio
import json
import math
from datetime import date, datetime, timedelta, timezone

import httpx
import pytest

from siro_assets.api_client import AsyncSiroClient, RequestPacer, RetryPolicy, SiroMalformedResponseError
from siro_assets.api_client import shapes
from siro_assets.api_client.shapes import list_page_cursor
from siro_assets.pipeline.ingest.fetch_days import stage_days
from siro_assets.simulator import FixedClock, SimulatorApi, SimulatorTransport, World, WorldConfig
from siro_assets.warehouse.staging import MalformedPageError, PageParse, RecordingsStage

NOW = datetime(2026, 3, 20, tzinfo=timezone.utc)
DAY = date(2026, 3, 3)
WORLD = World(WorldConfig(recordings_per_day=200))
TOKEN = "parse-once-token"


def _truth_ids() -> list[str]:
    start = datetime(DAY.year, DAY.month, DAY.day, tzinfo=timezone.utc)
    return sorted(r["id"] for r in WORLD.recordings(NOW, created_from=start, created_to=start + timedelta(days=1)))


@pytest.mark.parametrize(
    "body",
    [
        b'{"data":[],"cursor":"abc"}',
        b'{"data":[],"cursor":null}',
        b'{"data": [], "cursor" : "a-b_c=" }\n',
        b'{"cursor":"first","data":[]}',  # not last: full parse
        b'{"data":[{"cursor":"nested"}]}',  # only a nested one: no cursor
        b'{"data":[],"x":{"cursor":"nested"}}',
        b'{"data":[{"t":"a\\",\\"cursor\\":\\"fake\\"}"}],"cursor":"real"}',
        b'{"data":[{"t":"\\",\\"cursor\\":\\"fake\\"}"}]}',  # the text of a string, not a member
        b'{"data":[],"cursor":"caf\\u00e9"}',  # an escape: full parse
        b'{"data":[],"cursor":"x","cursor":"y"}',  # duplicate keys: the last, as json.loads
    ],
)
def test_the_cursor_scan_agrees_with_a_full_parse(body):
    assert list_page_cursor(body) == json.loads(body).get("cursor")


@pytest.mark.parametrize("body", [b"[]", b'{"data": 5}', b'{"data": [], "cursor": 17}', b"<html>502</html>"])
def test_a_body_that_is_not_a_list_page_is_refused_by_the_scan(body):
    with pytest.raises(ValueError):
        list_page_cursor(body)


def test_the_stage_refuses_a_malformed_page_and_keeps_its_batch_mates():
    good = json.dumps({"data": [{"id": "a", "createdAt": "2026-03-03T10:00:00Z"}], "cursor": None})
    other = json.dumps({"data": [{"id": "b", "createdAt": "2026-03-03T09:00:00Z"}], "cursor": None})
    bad = [
        '{"data":[{"id":"x","createdAt":"2026-03-03T10:00:00Z"},{"id": }],"cursor":null}',  # nested syntax error
        '{"data":[{"id":"y"}, "text"],"cursor":null}',  # an item that is not an object
        '{"data":[null],"cursor":null}',
        '{"data":{"id":"z"},"cursor":null}',  # not a list
        '{"cursor":null}',  # no list at all (the cursor scan alone accepts it)
    ]
    with RecordingsStage() as stage:
        verdicts = stage.add_pages([good, *bad, other])
        assert verdicts[0] == PageParse(1, (1772532000000,))
        assert verdicts[-1] == PageParse(1, (1772528400000,))
        assert all(isinstance(v, MalformedPageError) for v in verdicts[1:-1])
        assert "not a JSON object" in str(verdicts[2]) and '"data" list' in str(verdicts[4])
        summary = stage.finalize([DAY])
        assert summary.rows == 2
        assert stage._con.execute("SELECT list(id ORDER BY id) FROM recordings").fetchone()[0] == ["a", "b"]


class _Corrupting(httpx.AsyncBaseTransport):
    """Serves the simulator, but breaks the middle of list page `which` (its tail, and so
    its cursor, stay intact) for the first `times` attempts."""

    def __init__(self, api: SimulatorApi, which: int, times: int) -> None:
        self.inner = SimulatorTransport(api)
        self.which, self.times, self.lists = which, times, 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        if request.url.path.endswith("/recordings"):
            self.lists += 1
            if self.lists - self.which in range(self.times):
                middle = len(body) // 2
                body = body[:middle] + b'"}:{' + body[middle:]
        return httpx.Response(response.status_code, headers={"content-type": "application/json"},
                              content=body, request=request)


def _stage(transport, stage):
    async def go():
        async with AsyncSiroClient(TOKEN, "http://sim", transport=transport, pacer=RequestPacer(math.inf),
                                   retry=RetryPolicy(max_attempts=3, initial_backoff=0)) as client:
            report = await stage_days(client, stage, [DAY], concurrency=1)
            return report, client.stats

    return asyncio.run(go())


def test_a_page_the_stage_refuses_is_fetched_again_and_nothing_is_lost_or_doubled():
    transport = _Corrupting(SimulatorApi(WORLD, FixedClock(NOW), page_size_cap=50), which=2, times=2)
    with RecordingsStage() as stage:
        report, stats = _stage(transport, stage)
        summary = stage.finalize([DAY])
        ids = [r[0] for r in stage._con.execute("SELECT id FROM parsed ORDER BY id").fetchall()]
    assert stats.retries == 2
    assert ids == _truth_ids(), "every recording staged exactly once"
    assert summary.duplicates_dropped == 0 and report.records == len(ids)


def test_a_page_that_stays_malformed_fails_the_fetch_with_a_clear_error():
    transport = _Corrupting(SimulatorApi(WORLD, FixedClock(NOW), page_size_cap=50), which=2, times=99)
    with RecordingsStage() as stage, pytest.raises(SiroMalformedResponseError) as info:
        _stage(transport, stage)
    message = str(info.value)
    assert "GET /v1/core/recordings" in message and "after 3 attempts" in message
    assert "Malformed JSON" in message
    assert TOKEN not in message


def test_python_never_parses_a_list_page(monkeypatch):
    calls = []
    real = json.loads

    def counting(text, *args, **kwargs):
        if '"data"' in (text.decode() if isinstance(text, bytes) else text):
            calls.append(1)  # a page (the simulator parses its own cursors, not pages)
        return real(text, *args, **kwargs)

    monkeypatch.setattr(shapes.json, "loads", counting)
    with RecordingsStage() as stage:
        report, _ = _stage(SimulatorTransport(SimulatorApi(WORLD, FixedClock(NOW), page_size_cap=50)), stage)
        assert stage.finalize([DAY]).rows == len(_truth_ids())
    assert report.pages > 3 and calls == []


def test_a_read_ahead_on_a_cursor_from_a_refused_body_is_dropped():
    """Page 1 first comes back broken mid-body with a plausible tail (cursor "bogus"); the
    page read ahead on that cursor is abandoned, never yielded, and its failure never
    surfaces; the walk follows the cursor of the good copy."""
    good_1 = json.dumps({"data": [{"id": "a"}], "cursor": "c2"}).encode()
    broken_1 = b'{"data":[{"id": }],"cursor":"bogus"}'
    page_2 = json.dumps({"data": [{"id": "b"}], "cursor": None}).encode()
    served: list[str | None] = []
    first_copies = [broken_1, good_1]

    async def handler(request: httpx.Request) -> httpx.Response:
        cursor = request.url.params.get("cursor")
        served.append(cursor)
        for _ in range(5):  # a request takes a few turns of the loop: the read-ahead goes out meanwhile
            await asyncio.sleep(0)
        if cursor is None:
            return httpx.Response(200, content=first_copies.pop(0))
        if cursor == "c2":
            return httpx.Response(200, content=page_2)
        return httpx.Response(400, json={"message": "unknown cursor"})

    async def accept(body: bytes):
        return [record["id"] for record in json.loads(body)["data"]]  # ValueError if broken

    async def go():
        async with AsyncSiroClient(TOKEN, "http://sim", transport=httpx.MockTransport(handler),
                                   pacer=RequestPacer(math.inf),
                                   retry=RetryPolicy(max_attempts=3, initial_backoff=0)) as client:
            pages = client.aiter_recording_bodies(_query(), accept, read_ahead=lambda: True)
            return [page.accepted async for page in pages], client.stats

    pages, stats = asyncio.run(go())
    assert pages == [["a"], ["b"]]
    assert stats.retries == 1
    assert served.count("c2") == 1, "the good cursor is followed once"
    assert "bogus" in served, "the read-ahead on the broken copy's cursor did go out"


def _query():
    from siro_assets.api_client import created_window

    start = datetime(DAY.year, DAY.month, DAY.day, tzinfo=timezone.utc)
    return created_window(start, start + timedelta(days=1))
