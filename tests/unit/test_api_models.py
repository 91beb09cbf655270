"""Pydantic models accept every shape the OpenAPI schema allows and keep unknown fields."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from siro_assets.api_client import (
    CallerIdentity,
    Crm,
    CrmFieldMapping,
    CrmObjectRef,
    EntityExtraction,
    Recording,
    SummarySection,
)


def minimal_recording(**overrides) -> dict:
    payload = {
        "id": "rec_1",
        "organizationId": "org_1",
        "userId": "user_1",
        "title": "Kitchen remodel",
        "durationInMilliseconds": 1834000,
        "latitude": 40.7128,
        "longitude": -74,
        "result": "OPEN",
        "createdAt": "2024-06-13T04:00:00.592Z",
        "updatedAt": "2024-06-14T10:11:12.000Z",
        "deleted": False,
        "links": {"web": {"self": "https://app.siro.ai/recordings/rec_1"}},
    }
    payload.update(overrides)
    return payload


def full_recording() -> dict:
    return minimal_recording(
        rootDataPurgedAt=None,
        deletedAt=None,
        isProcessingDone=True,
        isEntityExtractionDone=True,
        isSummaryDone=False,
        crm={
            "integrationConnectionId": "ic_1",
            "users": [{"id": "u1", "externalId": "sf_u1"}],
            "engagement": {"id": "e1", "externalId": "sf_e1"},
            "opportunity": {"id": "o1", "externalId": "sf_o1"},
            "contacts": [{"id": "c1", "externalId": "sf_c1"}, {"id": "c2", "externalId": "sf_c2"}],
            "account": {"id": "a1", "externalId": "sf_a1"},
            "lead": None,
        },
        summary=[{"id": "s1", "name": "Next steps", "content": "Send a quote."}],
        entityExtractions=[
            {"name": "budget", "value": 25000, "mappings": [{"crmModelName": "Opportunity", "crmFieldName": "Amount"}]},
            {"name": "notes", "value": "call back", "mappings": None},
        ],
        evaluationScore=87.5,
        followups=[{"id": "f1", "score": 4}],
    )


def test_minimal_recording_parses_with_absent_optional_fields():
    rec = Recording.model_validate(minimal_recording())
    assert rec.id == "rec_1"
    assert rec.organization_id == "org_1"
    assert rec.duration_in_milliseconds == 1834000 and isinstance(rec.duration_in_milliseconds, int)
    assert rec.longitude == -74
    assert rec.created_at == datetime(2024, 6, 13, 4, 0, 0, 592000, tzinfo=UTC)
    assert rec.created_at.tzinfo is not None
    assert rec.web_url == "https://app.siro.ai/recordings/rec_1"
    for name in ("crm", "summary", "entity_extractions", "evaluation_score", "followups",
                 "root_data_purged_at", "deleted_at", "is_processing_done"):
        assert getattr(rec, name) is None


def test_full_recording_parses_every_block():
    rec = Recording.model_validate(full_recording())
    assert isinstance(rec.crm, Crm)
    assert rec.crm.integration_connection_id == "ic_1"
    assert rec.crm.users == [CrmObjectRef(id="u1", external_id="sf_u1")]
    assert rec.crm.engagement.external_id == "sf_e1"
    assert [c.external_id for c in rec.crm.contacts] == ["sf_c1", "sf_c2"]
    assert rec.crm.lead is None
    assert rec.summary == [SummarySection(id="s1", name="Next steps", content="Send a quote.")]
    assert rec.entity_extractions[0].mappings == [CrmFieldMapping(crm_model_name="Opportunity", crm_field_name="Amount")]
    assert rec.entity_extractions[1].mappings is None
    assert rec.evaluation_score == 87.5
    assert rec.followups == [{"id": "f1", "score": 4}]


def test_null_crm_and_empty_enrichment_lists():
    rec = Recording.model_validate(minimal_recording(crm=None, summary=[], entityExtractions=[]))
    assert rec.crm is None and rec.summary == [] and rec.entity_extractions == []


def test_crm_with_only_the_required_field():
    crm = Crm.model_validate({"integrationConnectionId": "ic"})
    assert crm.users is None and crm.account is None


def test_deleted_and_purged_recording():
    rec = Recording.model_validate(
        minimal_recording(deleted=True, deletedAt="2024-07-01T00:00:00.000Z", rootDataPurgedAt="2024-08-01T00:00:00.000Z")
    )
    assert rec.deleted is True
    assert rec.deleted_at == datetime(2024, 7, 1, tzinfo=UTC)
    assert rec.root_data_purged_at == datetime(2024, 8, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [
        "a string",
        "",
        "1",
        0,
        42,
        -7,
        3.5,
        1.0,
        True,
        False,
        None,
        [],
        ["a", "b"],
        [1, "two", 3.0, True, False, None],
        [0, 1],
    ],
)
def test_extraction_value_keeps_its_json_type(value):
    ex = EntityExtraction.model_validate({"name": "n", "value": value, "mappings": None})
    assert ex.value == value
    assert type(ex.value) is type(value)
    if isinstance(value, list):
        assert [type(v) for v in ex.value] == [type(v) for v in value]
    assert json.dumps(ex.model_dump(mode="json")["value"]) == json.dumps(value)


def test_extraction_value_and_mappings_may_be_absent():
    ex = EntityExtraction.model_validate({"name": "n"})
    assert ex.value is None and ex.mappings is None


def test_extraction_rejects_shapes_the_schema_does_not_allow():
    with pytest.raises(ValidationError):
        EntityExtraction.model_validate({"name": "n", "value": {"nested": "object"}})


def test_unknown_result_value_is_kept_as_string():
    assert Recording.model_validate(minimal_recording(result="RESCHEDULED")).result == "RESCHEDULED"


def test_unknown_fields_are_kept_and_round_trip():
    payload = full_recording()
    payload["brandNewField"] = {"nested": [1, 2]}
    payload["crm"]["newCrmObject"] = {"id": "x", "externalId": "y"}
    payload["entityExtractions"][0]["confidence"] = 0.9
    payload["links"]["web"]["embed"] = "https://embed"
    rec = Recording.model_validate(copy.deepcopy(payload))
    assert rec.model_extra == {"brandNewField": {"nested": [1, 2]}}
    dumped = rec.model_dump(by_alias=True)
    assert dumped["brandNewField"] == {"nested": [1, 2]}
    assert dumped["crm"]["newCrmObject"] == {"id": "x", "externalId": "y"}
    # JSON mode reproduces the API payload exactly, timestamps in the API's format.
    assert rec.model_dump(mode="json", by_alias=True, exclude_unset=True) == payload


def test_populate_by_snake_case_name():
    rec = Recording(
        id="r",
        organization_id="o",
        user_id="u",
        title="t",
        duration_in_milliseconds=1,
        latitude=0,
        longitude=0,
        result="WON",
        created_at=datetime(2024, 1, 1, tzinfo=UTC),
        updated_at=datetime(2024, 1, 1, tzinfo=UTC),
        deleted=False,
        links={"web": {"self": "https://x"}},
    )
    assert rec.model_dump(mode="json", by_alias=True)["createdAt"] == "2024-01-01T00:00:00.000Z"


@pytest.mark.parametrize("missing", ["id", "organizationId", "createdAt", "links", "deleted"])
def test_required_fields_are_required(missing):
    payload = minimal_recording()
    del payload[missing]
    with pytest.raises(ValidationError):
        Recording.model_validate(payload)


def test_zone_less_timestamps_are_rejected():
    with pytest.raises(ValidationError):
        Recording.model_validate(minimal_recording(createdAt="2024-06-13T04:00:00.592"))
    with pytest.raises(ValidationError):
        Recording(**{**minimal_recording(), "createdAt": datetime(2024, 1, 1)})


def test_caller_identity_with_nullable_fields():
    ident = CallerIdentity.model_validate(
        {
            "tokenId": "tok_1",
            "tokenName": "warehouse",
            "organizationId": "org_1",
            "authorizedOrgGroupId": None,
            "parentOrgGroupTokenId": None,
            "createdAt": "2024-01-01T00:00:00.000Z",
            "createdBy": None,
            "somethingNew": True,
        }
    )
    assert ident.organization_id == "org_1"
    assert ident.created_at == datetime(2024, 1, 1, tzinfo=UTC)
    assert ident.model_extra == {"somethingNew": True}
