"""SimulatorApi request handling: auth, filters, flags, pagination, cursors and faults."""

from __future__ import annotations

import asyncio
import base64
import json
from collections import Counter
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from siro_assets.simulator import (
    FaultConfig,
    FixedClock,
    SimulatedDisconnect,
    SimulatorApi,
    SimulatorTransport,
    World,
)

UTC = timezone.utc
MS = timedelta(milliseconds=1)
NOW = datetime(2026, 1, 20, tzinfo=UTC)
AUTH = {"Authorization": "Bearer T"}
LIST = "/v1/core/recordings"


def ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{t.microsecond // 1000:03d}Z"


def parse(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def world() -> World:
    return World()


@pytest.fixture()
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture()
def api(world: World, clock: FixedClock) -> SimulatorApi:
    return SimulatorApi(world, clock, token="T", page_size_cap=100)


def call(api: SimulatorApi, path: str = LIST, headers=AUTH, **params: str):
    status, _, body = api.handle("GET", path, list(params.items()), headers)
    return status, json.loads(body)


def walk(api: SimulatorApi, between_pages=None, **params: str) -> list[dict]:
    out: list[dict] = []
    cursor = None
    while True:
        p = dict(params)
        if cursor:
            p["cursor"] = cursor
        status, body = call(api, **p)
        assert status == 200, body
        out.extend(body["data"])
        cursor = body["cursor"]
        if cursor is None:
            return out
        if between_pages:
            between_pages()


# ---- auth and routing -----------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"Authorization": ""}, {"Authorization": "Bearer "}, {"Authorization": "Basic T"}])
def test_missing_token_is_401(api: SimulatorApi, headers) -> None:
    status, body = call(api, headers=headers)
    assert status == 401 and "error" in body


def test_wrong_token_is_401_and_any_token_without_config(world: World, clock: FixedClock, api: SimulatorApi) -> None:
    assert call(api, headers={"Authorization": "Bearer nope"})[0] == 401
    assert call(api, headers={"authorization": "bearer T"})[0] == 200
    open_api = SimulatorApi(world, clock)
    assert call(open_api, headers={"Authorization": "Bearer whatever"})[0] == 200


def test_unknown_paths_and_ids_are_404(api: SimulatorApi) -> None:
    assert call(api, "/v1/core/nothing")[0] == 404
    assert call(api, "/v2/recordings")[0] == 404
    assert call(api, "/v1/core/recordings/rec_20260105_0001_00000000")[0] == 404
    assert call(api, "/v1/core/recordings/garbage/summaries")[0] == 404
    status, _, _ = api.handle("POST", LIST, [], AUTH)
    assert status == 405


def test_recording_created_after_now_is_404(world: World, api: SimulatorApi) -> None:
    later = world.day(datetime(2026, 1, 21).date())[0]
    assert call(api, f"{LIST}/{later.id}")[0] == 404


def test_caller_identity(api: SimulatorApi) -> None:
    status, body = call(api, "/v1/core/auth/caller-identity")
    assert status == 200
    assert set(body) == {"tokenId", "tokenName", "organizationId", "authorizedOrgGroupId", "parentOrgGroupTokenId", "createdAt", "createdBy"}
    assert body["organizationId"] == "org_sim" and body["authorizedOrgGroupId"] is None
    assert "T" != body["tokenId"]


# ---- listing, filters, flags -------------------------------------------------------------


def test_default_page_size_and_cap(api: SimulatorApi) -> None:
    status, body = call(api)
    assert status == 200 and len(body["data"]) == 25 and body["cursor"]
    assert len(call(api, pageSize="500")[1]["data"]) == 100
    assert len(call(api, pageSize="7")[1]["data"]) == 7


def test_full_walk_matches_truth(world: World, api: SimulatorApi) -> None:
    got = walk(api, pageSize="37", showCrmLinks="true", showSummary="true", showEntityExtractions="true",
               showEvaluationScore="true", showFollowups="true")
    truth = world.recordings(NOW)
    assert got == truth
    assert [(r["createdAt"], r["id"]) for r in got] == sorted((r["createdAt"], r["id"]) for r in got)


def test_enrichment_blocks_only_when_flagged(api: SimulatorApi) -> None:
    plain = call(api, pageSize="50")[1]["data"]
    for key in ("crm", "summary", "entityExtractions", "evaluationScore", "followups"):
        assert all(key not in r for r in plain)
    for flag, key in [("showCrmLinks", "crm"), ("showSummary", "summary"), ("showEntityExtractions", "entityExtractions"),
                      ("showFollowups", "followups")]:
        rows = call(api, pageSize="50", **{flag: "true"})[1]["data"]
        assert all(key in r for r in rows), flag
        others = {"crm", "summary", "entityExtractions", "followups", "evaluationScore"} - {key}
        assert all(not (others & set(r)) for r in rows)
        assert all(key not in r for r in call(api, pageSize="5", **{flag: "false"})[1]["data"])
    scored = call(api, pageSize="50", showEvaluationScore="true")[1]["data"]
    assert any("evaluationScore" in r for r in scored)


def test_get_by_id_and_summaries(world: World, api: SimulatorApi) -> None:
    truth = [r for r in world.recordings(NOW, created_to=datetime(2026, 1, 5, tzinfo=UTC)) if r["summary"]]
    r = truth[0]
    status, plain = call(api, f"{LIST}/{r['id']}")
    assert status == 200 and "crm" not in plain and plain["updatedAt"] == r["updatedAt"]
    status, full = call(api, f"{LIST}/{r['id']}", showCrmLinks="true", showSummary="true", showFollowups="true")
    assert full["crm"] == r["crm"] and full["summary"] == r["summary"]
    assert [f["id"] for f in full["followups"]] == [f["id"] for f in r["followups"]]
    status, sums = call(api, f"{LIST}/{r['id']}/summaries")
    assert status == 200 and sums == r["summary"]
    deleted = next(x for x in world.recordings(NOW) if x["deleted"])
    status, d = call(api, f"{LIST}/{deleted['id']}")
    assert status == 200 and d["deleted"] is True and d["deletedAt"]


def test_created_bounds_are_exclusive_at_midnight(api: SimulatorApi) -> None:
    midnight = datetime(2026, 1, 5, tzinfo=UTC)
    rows = walk(api, pageSize="100", **{"createdAt:gt": ts(midnight - MS), "createdAt:lt": ts(midnight + timedelta(days=1))})
    assert rows[0]["createdAt"] == "2026-01-05T00:00:00.000Z"
    assert rows[-1]["createdAt"] == "2026-01-05T23:59:59.999Z"
    excl = walk(api, pageSize="100", **{"createdAt:gt": ts(midnight), "createdAt:lt": ts(midnight + timedelta(days=1) - MS)})
    assert {r["id"] for r in rows} - {r["id"] for r in excl} == {rows[0]["id"], rows[-1]["id"]}
    # Adjacent half-open days partition the recordings exactly.
    prev = walk(api, pageSize="100", **{"createdAt:gt": ts(midnight - timedelta(days=1) - MS), "createdAt:lt": ts(midnight)})
    assert not {r["id"] for r in prev} & {r["id"] for r in rows}
    assert prev[-1]["createdAt"] == "2026-01-04T23:59:59.999Z"


def test_updated_bounds(world: World, api: SimulatorApi) -> None:
    truth = world.recordings(NOW)
    counts = Counter(r["updatedAt"] for r in truth if r["createdAt"] >= "2026-01-10")
    pivot = max(counts, key=lambda k: counts[k])  # a tied updatedAt
    assert counts[pivot] >= 2
    at = {r["id"] for r in truth if r["updatedAt"] == pivot}

    def ids(**p: str) -> set[str]:
        return {r["id"] for r in walk(api, pageSize="100", **p)}

    gte, gt = ids(**{"updatedAt:gte": pivot}), ids(**{"updatedAt:gt": pivot})
    lte, lt = ids(**{"updatedAt:lte": pivot}), ids(**{"updatedAt:lt": pivot})
    assert at <= gte and not at & gt and at <= lte and not at & lt
    assert gte - gt == at and lte - lt == at
    assert gte == {r["id"] for r in truth if r["updatedAt"] >= pivot}
    assert lt == {r["id"] for r in truth if r["updatedAt"] < pivot}
    both = walk(api, pageSize="100", **{"updatedAt:gte": pivot, "updatedAt:lte": pivot})
    assert {r["id"] for r in both} == at
    # updatedAt queries are ordered by (updatedAt, id).
    rows = walk(api, pageSize="9", **{"updatedAt:gte": "2026-01-12T00:00:00.000Z"})
    keys = [(r["updatedAt"], r["id"]) for r in rows]
    assert keys == sorted(keys) and len(keys) == len(set(keys))


def test_status_filters(world: World, api: SimulatorApi, clock: FixedClock) -> None:
    clock.set(datetime(2026, 1, 5, 0, 10, tzinfo=UTC))  # the just-created midnight recordings are in progress
    for name in ("isProcessingDone", "isEntityExtractionDone", "isSummaryDone"):
        yes = walk(api, pageSize="100", **{name: "true"})
        no = walk(api, pageSize="100", **{name: "false"})
        assert all(r[name] is True for r in yes) and all(r[name] is False for r in no)
        assert yes and no
        assert len(yes) + len(no) == len(world.recordings(clock.now()))


@pytest.mark.parametrize(
    "param,value",
    [
        ("createdAt:gt", "yesterday"),
        ("createdAt:lt", "2026-13-01T00:00:00.000Z"),
        ("updatedAt:gte", "not-a-date"),
        ("updatedAt:gt", "12345"),
        ("updatedAt:lt", ""),
        ("updatedAt:lte", "2026-01-01T25:00:00Z"),
        ("isProcessingDone", "yes"),
        ("isSummaryDone", "TRUE"),
        ("isEntityExtractionDone", "1"),
        ("showCrmLinks", "maybe"),
        ("pageSize", "ten"),
        ("pageSize", "0"),
        ("pageSize", "-5"),
        ("pageSize", "2.5"),
        ("cursor", "%%%not-a-cursor"),
    ],
)
def test_bad_params_are_400_naming_the_param(api: SimulatorApi, param: str, value: str) -> None:
    status, body = call(api, **{param: value})
    assert status == 400
    assert param in body["error"]


def test_unknown_params_are_ignored(api: SimulatorApi) -> None:
    assert call(api, foo="bar", pageSize="3")[0] == 200


# ---- cursors ------------------------------------------------------------------------------


def test_cursor_snapshot_is_consistent_while_clock_moves(world: World, api: SimulatorApi, clock: FixedClock) -> None:
    params = {"updatedAt:gte": "2026-01-16T00:00:00.000Z", "showCrmLinks": "true", "showSummary": "true",
              "showEntityExtractions": "true", "showEvaluationScore": "true", "showFollowups": "true"}
    snapshot = [r for r in world.recordings(NOW) if r["updatedAt"] >= "2026-01-16T00:00:00.000Z"]
    snapshot.sort(key=lambda r: (r["updatedAt"], r["id"]))
    rows = walk(api, between_pages=lambda: clock.advance(timedelta(hours=12)), pageSize="10", **params)
    assert clock.now() > NOW + timedelta(days=1)
    assert rows == snapshot
    # A fresh walk at the new time sees more (and moved) recordings.
    fresh = walk(api, pageSize="100", **params)
    assert len(fresh) > len(rows)


def test_cursor_reused_with_different_query_is_400(api: SimulatorApi) -> None:
    status, body = call(api, pageSize="5", **{"createdAt:gt": "2026-01-02T00:00:00.000Z"})
    cursor = body["cursor"]
    assert call(api, pageSize="5", cursor=cursor, **{"createdAt:gt": "2026-01-02T00:00:00.000Z"})[0] == 200
    # Changing pageSize between pages is allowed; changing filters is not.
    assert call(api, pageSize="50", cursor=cursor, **{"createdAt:gt": "2026-01-02T00:00:00.000Z"})[0] == 200
    status, body = call(api, pageSize="5", cursor=cursor, **{"createdAt:gt": "2026-01-03T00:00:00.000Z"})
    assert status == 400 and "cursor" in body["error"]
    assert call(api, pageSize="5", cursor=cursor)[0] == 400
    forged = base64.urlsafe_b64encode(b'{"v":1,"t":"x","o":0,"q":"z"}').decode()
    assert call(api, cursor=forged)[0] == 400


def test_last_page_cursor_is_null(api: SimulatorApi) -> None:
    body = call(api, pageSize="100", **{"createdAt:gt": "2026-01-19T12:00:00.000Z"})[1]
    assert body["cursor"] is None and body["data"]
    empty = call(api, **{"createdAt:gt": "2030-01-01T00:00:00.000Z"})[1]
    assert empty == {"data": [], "cursor": None}


def test_tiny_pages_over_ties_neither_drop_nor_duplicate(api: SimulatorApi) -> None:
    p = {"updatedAt:gte": "2026-01-02T00:00:00.000Z", "updatedAt:lt": "2026-01-05T00:00:00.000Z"}
    one = walk(api, pageSize="1", **p)
    big = walk(api, pageSize="100", **p)
    assert [r["id"] for r in one] == [r["id"] for r in big]
    assert max(Counter(r["updatedAt"] for r in big).values()) >= 3


# ---- faults -------------------------------------------------------------------------------


def test_scripted_faults_in_order(api: SimulatorApi) -> None:
    api.script_faults(["429", "500", "502", "503", "truncate", "ok", "disconnect"])
    seen = [call(api)[0] for _ in range(4)]
    assert seen == [429, 500, 502, 503]
    status, headers, body = api.handle("GET", LIST, [], AUTH)
    assert status == 200 and "retry-after" not in {k.lower() for k in headers}
    with pytest.raises(ValueError):  # cut in half: not valid JSON (maybe not even valid UTF-8)
        json.loads(body)
    assert call(api)[0] == 200
    with pytest.raises(SimulatedDisconnect):
        api.handle("GET", LIST, [], AUTH)
    assert call(api)[0] == 200
    assert api.fault_count == {"429": 1, "500": 1, "502": 1, "503": 1, "truncate": 1, "disconnect": 1}
    assert api.request_count == 8
    with pytest.raises(ValueError):
        api.script_faults(["teapot"])


def _fault_sequence(world: World, seed: int, n: int = 300) -> list[str]:
    api = SimulatorApi(world, FixedClock(NOW), faults=FaultConfig(error_rate=0.2, disconnect_rate=0.05, truncate_rate=0.05, seed=seed))
    out = []
    for _ in range(n):
        try:
            status, _, body = api.handle("GET", "/v1/core/auth/caller-identity", [], AUTH)
        except SimulatedDisconnect:
            out.append("disconnect")
            continue
        try:
            json.loads(body)
            out.append(str(status))
        except ValueError:
            out.append("truncate")
    return out


def test_random_faults_are_seeded(world: World) -> None:
    a, b, c = _fault_sequence(world, 1), _fault_sequence(world, 1), _fault_sequence(world, 2)
    assert a == b and a != c
    counts = Counter(a)
    assert 150 < counts["200"] < 250
    assert {"429", "500", "502", "503", "disconnect", "truncate"} <= set(counts)


def test_rate_limit_sliding_window(world: World) -> None:
    t = [1000.0]
    api = SimulatorApi(world, FixedClock(NOW), faults=FaultConfig(rate_limit_per_minute=5), monotonic=lambda: t[0])
    assert [call(api)[0] for _ in range(6)] == [200] * 5 + [429]
    # Another token has its own window.
    assert call(api, headers={"Authorization": "Bearer other"})[0] == 200
    t[0] += 30
    assert call(api)[0] == 429
    t[0] += 30.001
    assert call(api)[0] == 200
    assert api.rate_limited_count == 2 and api.fault_count["429"] == 2


# ---- transport --------------------------------------------------------------------------


@pytest.mark.parametrize("base_url", ["https://functions.siro.ai/api-externalApi", "http://sim"])
def test_sync_transport(api: SimulatorApi, base_url: str) -> None:
    with httpx.Client(transport=SimulatorTransport(api), base_url=base_url, headers=AUTH) as client:
        r = client.get("/v1/core/recordings", params={"pageSize": "3", "showCrmLinks": "true"})
        assert r.status_code == 200 and len(r.json()["data"]) == 3
        assert r.headers["content-type"].startswith("application/json")
        api.script_faults(["disconnect"])
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/v1/core/recordings")
        assert client.get("/v1/core/recordings/unknown").status_code == 404


def test_async_transport(api: SimulatorApi) -> None:
    async def go() -> list[int]:
        async with httpx.AsyncClient(transport=SimulatorTransport(api), base_url="http://sim", headers=AUTH) as client:
            api.script_faults(["503", "disconnect"])
            first = await client.get("/v1/core/recordings")
            with pytest.raises(httpx.RemoteProtocolError):
                await client.get("/v1/core/recordings")
            rs = await asyncio.gather(*(client.get("/v1/core/recordings", params={"pageSize": "2"}) for _ in range(5)))
            return [first.status_code] + [r.status_code for r in rs]

    assert asyncio.run(go()) == [503] + [200] * 5


@pytest.mark.parametrize("param", ["createdAt:gt", "createdAt:lt", "updatedAt:gte", "updatedAt:lte"])
@pytest.mark.parametrize("value", ["0001-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999Z", "2026-01-05T00:00:00+05:00"])
def test_extreme_and_offset_timestamps_are_accepted(api: SimulatorApi, param: str, value: str) -> None:
    assert call(api, pageSize="2", **{param: value})[0] == 200
