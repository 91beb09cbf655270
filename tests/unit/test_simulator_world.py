"""The simulated world: determinism, time evolution, edge cases and data variety."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime, timedelta, timezone

import pytest

from siro_assets.simulator import World, WorldConfig

UTC = timezone.utc
MS = timedelta(milliseconds=1)


def dt(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


def ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{t.microsecond // 1000:03d}Z"


@pytest.fixture(scope="module")
def world() -> World:
    return World()


@pytest.fixture(scope="module")
def three_days(world: World) -> list[dict]:
    """A 3-day world (Jan 1-3) seen 6 days after its last day."""
    return world.recordings(dt(2026, 1, 10), created_to=dt(2026, 1, 4))


def test_two_worlds_are_identical() -> None:
    a, b = World(), World()
    now = dt(2026, 1, 9, 12)
    pa = a.recordings(now, created_to=dt(2026, 1, 5))
    pb = b.recordings(now, created_to=dt(2026, 1, 5))
    assert len(pa) > 50
    assert json.dumps(pa, sort_keys=True) == json.dumps(pb, sort_keys=True)
    other = World(WorldConfig(seed=8)).recordings(now, created_to=dt(2026, 1, 5))
    assert [r["id"] for r in other] != [r["id"] for r in pa]


def test_nothing_before_start_date_or_after_now(world: World) -> None:
    assert world.recordings(dt(2025, 12, 31, 23, 59)) == []
    early = world.recordings(dt(2026, 1, 1, 12))
    assert early and all(r["createdAt"] <= "2026-01-01T12:00:00.000Z" for r in early)
    assert world.day(date(2025, 12, 31)) == ()


def test_ids_encode_day_and_lookup_matches_listing(world: World, three_days: list[dict]) -> None:
    now = dt(2026, 1, 10)
    for r in three_days[::7]:
        assert r["id"].startswith("rec_" + r["createdAt"][:10].replace("-", ""))
        assert world.recording(r["id"], now) == r
    assert world.recording("rec_20260101_9999_deadbeef", now) is None
    assert world.recording("nope", now) is None
    with pytest.raises(KeyError):
        world.timeline("rec_20260101_0000_00000000")


def test_edge_timestamps_every_day(world: World) -> None:
    now = dt(2026, 2, 1)
    for day in range(1, 15):
        start = dt(2026, 1, day)
        recs = world.recordings(now, created_from=start, created_to=start + timedelta(days=1))
        created = [r["createdAt"] for r in recs]
        assert created[0] == ts(start), day
        assert created[-1] == ts(start + timedelta(days=1) - MS), day
        assert len(created) > len(set(created)), "expected same-millisecond creations"
        assert created == sorted(created)


def test_events_within_max_delay_and_sorted(world: World, three_days: list[dict]) -> None:
    for r in three_days:
        tl = world.timeline(r["id"])
        assert tl[0][1] == "created" and tl == sorted(tl, key=lambda e: e[0])
        assert all(t - tl[0][0] <= timedelta(days=5) for t, _ in tl)
        kinds = [k for _, k in tl]
        if "relinked" in kinds:
            assert kinds.index("linked") < kinds.index("relinked")


def test_state_is_a_function_of_the_clock(world: World, three_days: list[dict]) -> None:
    linked = [r for r in three_days if any(k == "linked" for _, k in world.timeline(r["id"]))]
    assert len(linked) > 10
    for r in linked[:15]:
        tl = world.timeline(r["id"])
        t_link = next(t for t, k in tl if k == "linked")
        before = world.recording(r["id"], t_link - MS)
        at = world.recording(r["id"], t_link)
        assert before["crm"] is None and at["crm"] is not None
        assert at["updatedAt"] == ts(t_link)
        assert before["updatedAt"] < at["updatedAt"]
        # updatedAt never moves backwards and equals the latest event <= now.
        prev = ""
        t0 = tl[0][0]
        for h in range(0, 24 * 6, 5):
            now = t0 + timedelta(hours=h)
            p = world.recording(r["id"], now)
            assert p["updatedAt"] >= prev
            assert p["updatedAt"] == ts(max(t for t, _ in tl if t <= now))
            prev = p["updatedAt"]


def test_flags_flip_at_their_events(world: World, three_days: list[dict]) -> None:
    checked = 0
    for r in three_days:
        tl = dict((k, t) for t, k in reversed(world.timeline(r["id"])))
        if "summarized" not in tl or "extracted" not in tl:
            continue
        c = tl["created"]
        fresh = world.recording(r["id"], c)
        assert fresh["isProcessingDone"] is False and fresh["summary"] == [] and fresh["entityExtractions"] == []
        assert fresh["followups"] == [] and "evaluationScore" not in fresh
        assert world.recording(r["id"], tl["processed"])["isProcessingDone"] is True
        assert world.recording(r["id"], tl["summarized"] - MS)["isSummaryDone"] is False
        assert world.recording(r["id"], tl["summarized"])["isSummaryDone"] is True
        assert world.recording(r["id"], tl["extracted"])["isEntityExtractionDone"] is True
        checked += 1
    assert checked > 20


def test_deleted_and_purged_semantics(world: World, three_days: list[dict]) -> None:
    deleted = [r for r in three_days if r["deleted"]]
    purged = [r for r in three_days if r["rootDataPurgedAt"]]
    assert deleted and purged
    for r in deleted:
        assert r["deletedAt"] is not None
        t_del = next(t for t, k in world.timeline(r["id"]) if k == "deleted")
        assert world.recording(r["id"], t_del - MS)["deleted"] is False
    for r in purged:
        assert r["summary"] == [] and r["entityExtractions"] == []
    assert all(r["deletedAt"] is None for r in three_days if not r["deleted"])


def test_data_variety(three_days: list[dict]) -> None:
    rs = three_days
    assert len(rs) > 80
    # Extraction value types and mappings.
    kinds: set[str] = set()
    maps: set[str] = set()
    models: set[str] = set()
    for r in rs:
        for e in r["entityExtractions"]:
            v = e["value"]
            if isinstance(v, list):
                inner = {type(x).__name__ for x in v}
                kinds.add("list[str]" if inner == {"str"} else "list[mixed]" if len(inner) > 1 else "list")
            elif isinstance(v, bool):
                kinds.add("bool")
            elif isinstance(v, int):
                kinds.add("int")
            else:
                kinds.add(type(v).__name__)
            m = e["mappings"]
            maps.add("null" if m is None else "empty" if m == [] else "some")
            models.update(x["crmModelName"] for x in m or [])
    assert {"str", "int", "float", "bool", "NoneType", "list[str]", "list[mixed]"} <= kinds
    assert maps == {"null", "empty", "some"}
    assert {"Opportunity", "Account", "Contact", "Lead", "Engagement"} <= models
    # CRM blocks: null (unlinked), and every sub-block present and absent; never null, which
    # the published schema does not allow (the pipeline's own tests feed it nulls by hand).
    assert any(r["crm"] is None for r in rs)
    crms = [r["crm"] for r in rs if r["crm"]]
    for key in ("users", "engagement", "opportunity", "contacts", "account", "lead"):
        assert any(key in c and c[key] for c in crms), key
        assert any(key not in c for c in crms), key
        assert all(c.get(key, ()) is not None for c in crms), key
    assert any(len(c.get("users") or []) > 1 for c in crms)
    assert any(len(c.get("contacts") or []) >= 2 for c in crms)
    assert all(set(o) == {"id", "externalId"} for c in crms for o in c.get("contacts") or [])
    # Summaries: unicode, long contents, empties.
    contents = [s["content"] for r in rs for s in r["summary"]]
    names = {s["name"] for r in rs for s in r["summary"]}
    assert any(len(c) > 15_000 for c in contents)
    assert any(any(ord(ch) > 0xFFFF for ch in c) for c in contents)  # emoji
    assert any(any("\u0600" <= ch <= "\u06ff" or "\u0590" <= ch <= "\u05ff" for ch in c) for c in contents)  # RTL
    assert any(any("\u3040" <= ch <= "\u9fff" for ch in c) for c in contents)  # CJK
    assert {"Overview", "Next steps", "Objections"} & names
    assert any(r["summary"] == [] and r["isSummaryDone"] for r in rs) or any(r["summary"] == [] for r in rs)
    # Scores, followups, results, misc fields.
    assert any("evaluationScore" in r for r in rs) and any("evaluationScore" not in r for r in rs)
    assert any(r["followups"] for r in rs) and any(r["followups"] == [] for r in rs)
    assert {r["result"] for r in rs} == {"OPEN", "WON", "LOST"}
    assert all(r["links"]["web"]["self"] == f"https://app.siro.ai/recordings/{r['id']}" for r in rs)
    assert len({r["userId"] for r in rs}) > 5
    assert all(r["organizationId"] == "org_sim" for r in rs)
    # Ties in updatedAt (bulk CRM syncs) and in createdAt.
    assert max(Counter(r["updatedAt"] for r in rs).values()) >= 3
    assert max(Counter(r["createdAt"] for r in rs).values()) >= 2


def test_day_generation_is_lazy() -> None:
    # No wall-clock bound here (it flaked on a loaded machine); a 1,000-recording day takes
    # ~0.1 s on the 2-core machine, which bench/ingest_throughput.py exercises at scale.
    big = World(WorldConfig(recordings_per_day=1000, start_date=date(2020, 1, 1)))
    recs = big.day(date(2026, 1, 6))
    assert len(recs) > 800
    # Only the touched day was generated, even though the world spans six years.
    assert big._day_cached.cache_info().currsize == 1
