"""`python -m fake_crms` serves the fake CRMs on 127.0.0.1, and a
delivery through real sockets survives its injected faults (dropped connections included)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from siro_assets.crm import Routing
from siro_assets.crm.config import HttpSettings, HubSpotSettings, SalesforceSettings
from siro_assets.crm.sinks import SinkFactory

from tests.crm_support import SF_ID, Bed, crm_block, extraction, recording

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
D1 = date(2026, 1, 5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_server_and_a_delivery_over_http():
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "fake_crms", "--port", str(port), "--fault-rate", "0.3",
         "--fault-seed", "4"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True,
    )
    try:
        line = proc.stdout.readline()
        assert re.search(rf"http://127\.0\.0\.1:{port}", line), line
        base = f"http://127.0.0.1:{port}"
        routing = Routing(connections={
            "ic_sf": SalesforceSettings(login_url=f"{base}/salesforce", client_id="fake-client-id",
                                        client_secret="fake-client-secret", max_attempts=8),
            "ic_hs": HubSpotSettings(base_url=f"{base}/hubspot", token="fake-hubspot-token", max_attempts=8,
                                     rate_limit_window_seconds=0.01, requests_per_second=1000),
            "ic_http": HttpSettings(url=f"{base}/http", token="fake-http-token", max_attempts=8),
        })
        bed = Bed(routing=routing)
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
    finally:
        proc.terminate()
        proc.wait(timeout=10)
