"""Issue 16 item 1 end to end: fake Salesforce and HubSpot in their own process, real
sockets, 20 % injected faults. Newer recordings extract blanks ("", "  ", [], [""],
[null, null], null) for two fields of each CRM: the one the CRM already holds keeps its
value, and the one only an older recording ever filled gets that older real value."""

from __future__ import annotations

import json
from datetime import date

import httpx
import pytest

from siro_assets.crm.sinks import SinkFactory
from siro_assets.crm.values import is_blank

from tests.crm_support import SF_ID, Bed, crm_block, extraction, recording
from tests.e2e.processes import fake_crm_routing, fake_crms

pytestmark = pytest.mark.e2e
D1, D2 = date(2026, 1, 5), date(2026, 1, 6)
BLANKS = [None, [None, None], [], [""], ["", " "], "   ", ""]   # newest last: ""
SF_OPP = crm_block("ic_sf", opportunity=SF_ID["opportunity"])
HS_DEAL = crm_block("ic_hs", opportunity="d1")
REAL = "Call back Tuesday"
OLDER = "Roof is 20 years old"


def _get(client: httpx.Client, url: str, **kwargs) -> dict:
    """A read through the fakes' injected faults: retried until it is answered."""
    for _ in range(30):
        try:
            response = client.get(url, **kwargs)
        except httpx.TransportError:
            continue
        if response.status_code < 500 and response.status_code != 429:
            assert response.status_code == 200, response.text
            return response.json()
    raise AssertionError(f"no answer from {url}")


def _salesforce_record(base: str) -> dict:
    with httpx.Client(timeout=10) as client:
        for _ in range(30):
            try:
                token = client.post(f"{base}/salesforce/services/oauth2/token", data={
                    "grant_type": "client_credentials", "client_id": "fake-client-id",
                    "client_secret": "fake-client-secret"})
            except httpx.TransportError:
                continue
            if token.status_code == 200:
                break
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        return _get(client, f"{base}/salesforce/services/data/v62.0/sobjects/Opportunity/{SF_ID['opportunity']}",
                    headers=headers)


def _hubspot_record(base: str) -> dict:
    with httpx.Client(timeout=10) as client:
        return _get(client, f"{base}/hubspot/crm/v3/objects/deals/d1",
                    headers={"Authorization": "Bearer fake-hubspot-token"})["properties"]


def _deliver_until_settled(bed: Bed, days: list[date]) -> int:
    """Runs until one delivers and fails nothing (faults leave fields due); writes delivered."""
    delivered = 0
    for _ in range(15):
        factory = SinkFactory(bed.connect, run_id=f"e2e{bed.runs}", sleep=lambda seconds: None)
        report = bed.delivery(sinks=factory).run(days)
        delivered += report.delivered
        if report.failed == 0 and not report.stopped:
            return delivered
    raise AssertionError(bed.log("external_id, crm_field_name, outcome, error_code, error_message"))


def _real(crm: dict, field: str) -> list[dict]:
    return [recording(f"real_{crm['integrationConnectionId']}", D1, hour=8, crm=crm, entityExtractions=[
        extraction(REAL, ("Opportunity", field))])]


def test_a_blank_never_clears_a_field_in_salesforce_or_hubspot_and_the_older_real_value_is_written():
    with fake_crms("--fault-rate", "0.2", "--fault-seed", "16") as base:
        bed = Bed(routing=fake_crm_routing(base, max_attempts=8))
        first = [*_real(SF_OPP, "Note__c"), *_real(HS_DEAL, "note")]
        bed.load(D1, first)
        assert _deliver_until_settled(bed, [D1]) == 2
        assert _salesforce_record(base)["Note__c"] == REAL
        assert _hubspot_record(base) == {"note": REAL}

        # An older recording fills the second field; newer ones extract only blanks.
        older = [
            recording("older_sf", D1, hour=7, crm=SF_OPP, entityExtractions=[extraction(OLDER, ("Opportunity", "Description"))]),
            recording("older_hs", D1, hour=7, crm=HS_DEAL, entityExtractions=[extraction(OLDER, ("Deal", "description"))]),
        ]
        bed.load(D1, first + older)
        bed.load(D2, [
            recording(f"blank_{crm['integrationConnectionId']}_{i}", D2, hour=i, crm=crm, entityExtractions=[
                extraction(value, ("Opportunity", kept)), extraction(value, ("Opportunity", late), name="y")])
            for crm, kept, late in ((SF_OPP, "Note__c", "Description"), (HS_DEAL, "note", "description"))
            for i, value in enumerate(BLANKS)
        ])
        delivered = _deliver_until_settled(bed, [D1, D2])

        # Before the fix: "" went out to all four fields, wiping the first two.
        sf = _salesforce_record(base)
        assert (sf["Note__c"], sf["Description"]) == (REAL, OLDER)
        assert _hubspot_record(base) == {"note": REAL, "description": OLDER}
        assert delivered == 2
        # The ledger agrees, and no attempt ever carried a blank.
        values = [json.loads(v) for (v,) in bed.log("value")]
        assert values and not any(is_blank(v) for v in values)
        assert bed.state("external_id, field_key, acked_recording_id") == [
            (SF_ID["opportunity"], "description", "older_sf"), (SF_ID["opportunity"], "note__c", "real_ic_sf"),
            ("d1", "description", "older_hs"), ("d1", "note", "real_ic_hs")]
        # Settled: nothing more to send.
        assert _deliver_until_settled(bed, [D1, D2]) == 0
