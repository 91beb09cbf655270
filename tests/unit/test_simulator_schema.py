"""Everything the simulator serves validates against Siro's published OpenAPI schema.

Every enrichment-flag combination, on every endpoint, for three days of a world seen at
moments that show its hard shapes (fresh and unprocessed, mid-linking, deleted, purged,
relinked). The only exception allowed is the documented ``crm: null`` of unlinked recordings.
"""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timezone

import pytest

from siro_assets.simulator import FixedClock, SimulatorApi, World, WorldConfig
from tests.openapi_schema import (
    CALLER_IDENTITY_PATH,
    LIST_PATH,
    RECORDING_PATH,
    SUMMARIES_PATH,
    allow_unlinked_crm_null,
    load_openapi,
    problems,
    response_validators,
)

UTC = timezone.utc
AUTH = {"Authorization": "Bearer T"}
SHOW_FLAGS = ("showCrmLinks", "showSummary", "showEntityExtractions", "showEvaluationScore", "showFollowups")
FLAG_COMBINATIONS = [
    {name: "true" if on else "false" for name, on in zip(SHOW_FLAGS, bits)}
    for bits in itertools.product((False, True), repeat=len(SHOW_FLAGS))
]
# Three days of recordings, seen while day 3 is still going (fresh, unprocessed, unlinked)
# and long after, when every deletion, purge and relink has happened.
CREATED = {"createdAt:gt": "2025-12-31T23:59:59.999Z", "createdAt:lt": "2026-01-04T00:00:00.000Z"}
MOMENTS = (datetime(2026, 1, 3, 13, 0, tzinfo=UTC), datetime(2026, 1, 12, tzinfo=UTC))


@pytest.fixture(scope="module")
def validators():
    return response_validators(allow_unlinked_crm_null(load_openapi()))


@pytest.fixture(scope="module")
def world() -> World:
    return World(WorldConfig(seed=7, recordings_per_day=30))


def get(api: SimulatorApi, path: str, params: dict[str, str] | None = None):
    status, _, body = api.handle("GET", path, list((params or {}).items()), AUTH)
    assert status == 200, body
    return json.loads(body)


def assert_valid(validator, instance, what: str) -> None:
    found = problems(validator, instance)
    assert not found, f"{what} breaks the published schema: {found}"


def list_pages(api: SimulatorApi, params: dict[str, str]):
    cursor = None
    while True:
        page = get(api, LIST_PATH, {**params, **({"cursor": cursor} if cursor else {})})
        yield page
        cursor = page["cursor"]
        if cursor is None:
            return


@pytest.fixture(scope="module")
def served(world: World, validators) -> list[dict]:
    """Validate every list page and every single recording, in every flag combination at
    every moment; return the fully-enriched single recordings for the coverage checks."""
    full: list[dict] = []
    for moment in MOMENTS:
        api = SimulatorApi(world, FixedClock(moment), token="T", page_size_cap=100)
        for flags in FLAG_COMBINATIONS:
            ids = []
            for page in list_pages(api, {**CREATED, **flags, "pageSize": "37"}):
                assert_valid(validators[LIST_PATH], page, f"list page at {moment} with {flags}")
                ids += [r["id"] for r in page["data"]]
            assert ids
            for rid in ids:
                one = get(api, f"{LIST_PATH}/{rid}", flags)
                assert_valid(validators[RECORDING_PATH], one, f"{rid} at {moment} with {flags}")
                if all(v == "true" for v in flags.values()):
                    full.append(one)
        for rid in {r["id"] for r in full}:
            summaries = get(api, f"{LIST_PATH}/{rid}/summaries")
            assert_valid(validators[SUMMARIES_PATH], summaries, f"summaries of {rid} at {moment}")
        assert_valid(validators[CALLER_IDENTITY_PATH], get(api, CALLER_IDENTITY_PATH), "caller identity")
    return full


def test_every_response_in_every_flag_combination_matches_the_schema(served: list[dict]) -> None:
    # The validation happens in the fixture; here: it saw the shapes that are hard to get right.
    crms = [r["crm"] for r in served if r["crm"] is not None]
    assert any(r["crm"] is None for r in served)
    for key in ("engagement", "opportunity", "account", "lead", "users", "contacts"):
        assert any(key not in c for c in crms) and any(key in c for c in crms), key
    assert any(r["deleted"] for r in served) and any(r["rootDataPurgedAt"] for r in served)
    assert any(not r["isProcessingDone"] for r in served)
    assert any(r["followups"] for r in served)
    assert {f["status"] for r in served for f in r["followups"]} == {"TO_DO", "IN_PROGRESS", "COMPLETE"}
    assert {f["hasFollowupComment"] for r in served for f in r["followups"]} == {True, False}
    assert any("evaluationScore" not in r for r in served) and any("evaluationScore" in r for r in served)
    extractions = [e for r in served for e in r["entityExtractions"]]
    assert any(e["value"] is None for e in extractions) and any(e["mappings"] is None for e in extractions)
    assert any(isinstance(e["value"], list) and None in e["value"] for e in extractions)


def test_the_validator_enforces_what_the_simulator_used_to_get_wrong(world: World, validators) -> None:
    """Guards the test itself: nullable is honoured exactly where the schema says so."""
    api = SimulatorApi(world, FixedClock(MOMENTS[1]), token="T")
    flags = {name: "true" for name in SHOW_FLAGS}
    page = get(api, LIST_PATH, {**CREATED, **flags, "pageSize": "100"})
    linked = next(r for r in page["data"] if r["crm"])
    with_followups = next(r for r in page["data"] if r["followups"])
    detailed = get(api, f"{LIST_PATH}/{with_followups['id']}", flags)

    assert_valid(validators[LIST_PATH], page, "baseline page")
    for key in ("engagement", "opportunity", "account", "lead"):
        bad = {**page, "data": [{**linked, "crm": {**linked["crm"], key: None}}]}
        assert problems(validators[LIST_PATH], bad), f"crm.{key}: null must be rejected"
    incomplete = json.loads(json.dumps(detailed))
    del incomplete["followups"][0]["hasFollowupComment"]
    assert problems(validators[RECORDING_PATH], incomplete)
    # Nullable fields accept null; the documented exception accepts an unlinked crm.
    ok = {**detailed, "crm": None, "deletedAt": None, "rootDataPurgedAt": None}
    ok["followups"] = [{**f, "followupAction": None, "crmCustomer": None} for f in detailed["followups"]]
    assert_valid(validators[RECORDING_PATH], ok, "nullable fields set to null")
    assert problems(validators[RECORDING_PATH], {**detailed, "title": None})
    assert problems(validators[RECORDING_PATH], {**detailed, "evaluationScore": None})
    # Without the exception, the published schema itself refuses crm: null.
    strict = response_validators(load_openapi())
    assert problems(strict[RECORDING_PATH], {**detailed, "crm": None})
