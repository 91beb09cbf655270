"""The fake CRMs answer with the vendors' shapes, fault as told, and journal what landed."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest

from fake_crms import (
    LOST_RESPONSE, RATE_LIMIT, CrmFaults, FakeCrms, FakeCrmTransport, FakeHttpCrm, FakeHubSpot, FakeSalesforce,
    SteppingClock,
)
from tests.crm_support import START

OPP = "006000000000001AAA"


@pytest.fixture
def bed():
    clock = SteppingClock(START)
    sf, hs, http = FakeSalesforce(clock, token_ttl=timedelta(minutes=5)), FakeHubSpot(clock, requests_per_window=1), FakeHttpCrm(clock)
    client = httpx.Client(transport=FakeCrmTransport(FakeCrms(sf, hs, http)), base_url="http://fake-crm")
    return clock, sf, hs, http, client


def token(client):
    return client.post("/salesforce/services/oauth2/token", data={
        "grant_type": "client_credentials", "client_id": "fake-client-id", "client_secret": "fake-client-secret"})


def test_salesforce_token_describe_and_collections(bed):
    clock, sf, _, _, client = bed
    assert client.post("/salesforce/services/oauth2/token", data={"grant_type": "client_credentials",
                       "client_id": "x", "client_secret": "y"}).json() == {
        "error": "invalid_client", "error_description": "invalid client credentials"}
    body = token(client).json()
    assert set(body) == {"access_token", "instance_url", "id", "token_type", "issued_at", "signature"}
    assert body["instance_url"] == "http://fake-crm/salesforce"
    auth = {"Authorization": f"Bearer {body['access_token']}"}
    describe = client.get("/salesforce/services/data/v62.0/sobjects/Opportunity/describe", headers=auth).json()
    assert describe["name"] == "Opportunity" and {"name", "type", "updateable", "length", "picklistValues",
                                                 "restrictedPicklist"} <= set(describe["fields"][0])
    answer = client.patch("/salesforce/services/data/v62.0/composite/sobjects", headers=auth, json={
        "allOrNone": False, "records": [
            {"attributes": {"type": "Opportunity"}, "id": OPP, "StageName": "Closed Won", "note__c": "x"},
            {"attributes": {"type": "Opportunity"}, "id": OPP, "StageName": "Maybe", "Note__c": "y"},
            {"attributes": {"type": "Opportunity"}, "id": "001000000000001AAA", "Note__c": "z"},
        ]})
    assert answer.status_code == 200 and "Sforce-Limit-Info" in answer.headers
    results = answer.json()
    assert results[0] == {"id": OPP, "success": True, "errors": []}
    assert results[1]["errors"] == [{"statusCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                                     "message": "StageName: bad value for restricted picklist field: Maybe",
                                     "fields": ["StageName"]}]
    assert results[2]["errors"][0]["statusCode"] == "MALFORMED_ID"
    assert sf.records == {("Opportunity", OPP): {"StageName": "Closed Won", "Note__c": "x"}}   # record 2 not applied
    clock.advance(timedelta(minutes=6))
    expired = client.get("/salesforce/services/data/v62.0/sobjects/Opportunity/describe", headers=auth)
    assert expired.status_code == 401 and expired.json() == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


def test_salesforce_quota(bed):
    _, sf, _, _, client = bed
    sf.daily_limit = 1
    auth = {"Authorization": f"Bearer {token(client).json()['access_token']}"}
    path = "/salesforce/services/data/v62.0/sobjects/Lead/describe"
    assert client.get(path, headers=auth).status_code == 200
    over = client.get(path, headers=auth)
    assert over.status_code == 403 and over.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"


def test_hubspot_whole_batch_validation_207_and_rate_limit(bed):
    clock, _, hs, _, client = bed
    auth = {"Authorization": "Bearer fake-hubspot-token"}
    assert client.get("/hubspot/crm/v3/properties/deals").json()["category"] == "INVALID_AUTHENTICATION"
    bad = client.post("/hubspot/crm/v3/objects/deals/batch/update", headers=auth, json={"inputs": [
        {"id": "1", "properties": {"dealstage": "closedwon"}}, {"id": "2", "properties": {"dealstage": "nope"}}]})
    assert bad.status_code == 400 and bad.json()["category"] == "VALIDATION_ERROR"
    details = json.loads(bad.json()["message"].split(": ", 1)[1])
    assert details == [{"isValid": False, "message": details[0]["message"], "error": "INVALID_OPTION", "name": "dealstage"}]
    assert hs.records == {}
    limited = client.get("/hubspot/crm/v3/properties/deals", headers=auth)
    assert limited.status_code == 429 and limited.json()["policyName"] == "TEN_SECONDLY_ROLLING"
    assert "retry-after" not in limited.headers
    clock.advance(timedelta(seconds=10))
    hs.missing_ids = {"2"}
    partial = client.post("/hubspot/crm/v3/objects/deals/batch/update", headers=auth, json={"inputs": [
        {"id": "1", "properties": {"dealstage": "closedwon"}}, {"id": "2", "properties": {"amount": "3"}}]})
    assert partial.status_code == 207
    assert partial.json()["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    assert partial.json()["errors"][0]["context"] == {"ids": ["2"]}
    assert hs.records == {("deals", "1"): {"dealstage": "closedwon"}}


def test_a_lost_response_applies_the_write_then_drops_the_connection(bed):
    _, _, _, http, client = bed
    http.faults = CrmFaults(script=[LOST_RESPONSE])
    headers = {"Authorization": "Bearer fake-http-token", "Idempotency-Key": "k1"}
    with pytest.raises(httpx.RemoteProtocolError):
        client.patch("/http/Deal/a%2Fb", headers=headers, json={"Stage": "A"})
    assert http.records == {("Deal", "a/b"): {"Stage": "A"}}
    assert [e.acknowledged for e in http.journal.entries] == [False]
    # The retry with the same key is answered from the first attempt and changes nothing.
    assert client.patch("/http/Deal/a%2Fb", headers=headers, json={"Stage": "A"}).status_code == 200
    assert len(http.journal.entries) == 1
    # A second acknowledged write of the same value is what the journal calls a defect.
    client.patch("/http/Deal/a%2Fb", headers={**headers, "Idempotency-Key": "k2"}, json={"Stage": "A"})
    client.patch("/http/Deal/a%2Fb", headers={**headers, "Idempotency-Key": "k3"}, json={"Stage": "A"})
    assert len(http.journal.resent_after_ack()) == 1


def test_faults_follow_the_script_then_the_rate():
    faults = CrmFaults(rate=0.5, seed=1, kinds=(RATE_LIMIT,), script=["none", RATE_LIMIT])
    allowed = (RATE_LIMIT,)
    assert [faults.next(allowed), faults.next(allowed)] == [None, RATE_LIMIT]
    drawn = [faults.next(allowed) for _ in range(200)]
    assert 60 < drawn.count(RATE_LIMIT) < 140
    assert CrmFaults(rate=1.0, kinds=(RATE_LIMIT,)).next(("server_error",)) is None
