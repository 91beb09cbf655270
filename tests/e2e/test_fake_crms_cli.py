"""`python -m fake_crms` serves the fake CRMs on 127.0.0.1, and a
delivery through real sockets survives its injected faults (dropped connections included)."""

from __future__ import annotations

from datetime import date

import pytest

from siro_assets.crm.sinks import SinkFactory

from tests.crm_support import SF_ID, Bed, crm_block, extraction, recording
from tests.e2e.processes import fake_crm_routing, fake_crms

pytestmark = pytest.mark.e2e
D1 = date(2026, 1, 5)


def test_cli_server_and_a_delivery_over_http():
    with fake_crms("--fault-rate", "0.3", "--fault-seed", "4") as base:
        bed = Bed(routing=fake_crm_routing(base, http=True, max_attempts=8))
        bed.load(D1, [
            recording("a", D1, crm=crm_block("ic_sf", opportunity=SF_ID["opportunity"]),
                      entityExtractions=[extraction("Closed Won", ("Opportunity", "StageName"))]),
            recording("b", D1, crm=crm_block("ic_hs", opportunity="d1"), entityExtractions=[extraction(5, ("Deal", "amount"))]),
            recording("c", D1, crm=crm_block("ic_http", opportunity="x/1"), entityExtractions=[extraction("A", ("Deal", "Stage"))]),
        ])
        # Real sockets, no transport injected; retries without backoff waits.
        factory = SinkFactory(bed.connect, run_id="e2e", sleep=lambda seconds: None)
        report = bed.delivery(run_id="e2e", sinks=factory).run()
        assert report.delivered == 3, bed.log("external_id, outcome, error_code, error_message")
        assert bed.run().delivered == 0   # nothing is sent twice
