"""Secrets never leak through CRM errors: a token with a trailing newline (a Kubernetes
secret made `--from-file`, a CRLF `.env`) on every sink, and any error text that quotes
a secret, checked in the log and state tables, the outbox, the log records and the report."""

from __future__ import annotations

import json
import logging
from datetime import date

import httpx
import pytest

from siro_assets.crm import Delivery, load_routing
from siro_assets.crm.sinks import SinkFactory
from fake_crms import FakeCrms, FakeHttpCrm, FakeHubSpot, FakeSalesforce, run_in_thread

from tests.crm_support import SF_ID, Bed, crm_block, extraction, recording

D1 = date(2026, 1, 5)
SF_ID_VALUE, SF_SECRET = "sf-client-id-2f9c", "sf-secret-7d1e9a"
HS_TOKEN, HTTP_TOKEN = "pat-na1-hs-token-5b3c", "mw-token-e81f0d"
SECRETS = (SF_ID_VALUE, SF_SECRET, HS_TOKEN, HTTP_TOKEN)

ROUTING = """
connections:
  ic_sf: {{sink: salesforce, login_url: "{base}/salesforce", client_id: {{env: T_SF_ID}}, client_secret: {{env: T_SF_SECRET}}}}
  ic_hs: {{sink: hubspot, base_url: "{base}/hubspot", token: {{env: T_HS_TOKEN}}, requests_per_second: 1000}}
  ic_http: {{sink: http, url: "{base}/http", token: {{env: T_HTTP_TOKEN}}}}
  "*": {{sink: outbox}}
"""


def _recordings() -> list[dict]:
    return [
        recording("r_sf", D1, crm=crm_block("ic_sf", opportunity=SF_ID["opportunity"]),
                  entityExtractions=[extraction("v", ("Opportunity", "Note__c"))]),
        recording("r_hs", D1, crm=crm_block("ic_hs", opportunity="d1"), entityExtractions=[extraction("v", ("Deal", "note"))]),
        recording("r_http", D1, crm=crm_block("ic_http", opportunity="o1"),
                  entityExtractions=[extraction("v", ("Opportunity", "Note"))]),
        recording("r_box", D1, crm=crm_block("ic_box", opportunity="o2"),
                  entityExtractions=[extraction("v", ("Opportunity", "Note"))]),
    ]


def everything_said(bed: Bed, caplog, report) -> str:
    """Every text a read-only consumer or an operator can see after the run."""
    tables = [bed.con.execute(f"SELECT * FROM siro.{t}").fetchall()
              for t in ("crm_writeback_log", "crm_writeback_state", "crm_outbox")]
    records = [r.getMessage() for r in caplog.records]
    return json.dumps([tables, records, repr(report), report.stopped], default=str)


def assert_never_said(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text
        assert secret[:8] not in text


@pytest.mark.parametrize("ending", ["\n", "\r\n"])
def test_secrets_ending_in_a_newline_deliver_on_every_sink_and_never_show(tmp_path, caplog, ending):
    bed = Bed()
    crms = FakeCrms(FakeSalesforce(bed.clock, client_id=SF_ID_VALUE, client_secret=SF_SECRET),
                    FakeHubSpot(bed.clock, token=HS_TOKEN), FakeHttpCrm(bed.clock, token=HTTP_TOKEN))
    base, stop = run_in_thread(crms)
    try:
        path = tmp_path / "crm.yaml"
        path.write_text(ROUTING.format(base=base))
        routing = load_routing({"SIRO_CRM_CONNECTIONS": str(path), "T_SF_ID": SF_ID_VALUE + ending,
                                "T_SF_SECRET": SF_SECRET + ending, "T_HS_TOKEN": HS_TOKEN + ending,
                                "T_HTTP_TOKEN": HTTP_TOKEN + ending})
        bed.load(D1, _recordings())
        factory = SinkFactory(bed.connect, run_id="run1", sleep=bed.clock.sleep, clock=bed.clock.monotonic,
                              now=bed.clock.now)
        with caplog.at_level(logging.DEBUG):
            report = Delivery(bed.connect, routing, run_id="run1", sinks=factory, now=bed.clock.now).run()
    finally:
        stop()
    assert report.stopped == [] and (report.delivered, report.failed) == (4, 0)
    assert crms.salesforce.records and crms.hubspot.records and crms.http.records and len(bed.outbox()) == 1
    assert_never_said(everything_said(bed, caplog, report))


class Echoing(httpx.BaseTransport):
    """Between the sinks and the fakes: quotes the request's secrets back in its errors.

    `refused`: a write fails the way httpx refuses an illegal header value (its text quotes
    the header). `answer`: the CRM answers a write, or the Salesforce token request, with
    an error that quotes the request's headers and body.
    """

    def __init__(self, inner: httpx.BaseTransport, mode: str) -> None:
        self.inner, self.mode = inner, mode

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        writes = request.method in ("PATCH", "POST") and not path.endswith("/oauth2/token")
        if self.mode == "refused" and writes:
            header = request.headers.get("authorization", "").encode()
            raise httpx.LocalProtocolError(f"Illegal header value {header!r}")
        if self.mode == "answer" and (writes or path.endswith("/oauth2/token")):
            echo = f"cannot use {dict(request.headers)} with {request.read().decode()}"
            status = 400 if path.endswith("/oauth2/token") else 409
            return httpx.Response(status, json={"error": "echo", "errorCode": "echo", "message": echo,
                                                "error_description": echo}, request=request)
        return self.inner.handle_request(request)


@pytest.mark.parametrize("mode", ["refused", "answer"])
def test_error_text_quoting_a_secret_is_scrubbed_on_every_sink(tmp_path, caplog, mode):
    bed = Bed(salesforce={"client_id": SF_ID_VALUE, "client_secret": SF_SECRET},
              hubspot={"token": HS_TOKEN}, http={"token": HTTP_TOKEN})
    path = tmp_path / "crm.yaml"
    path.write_text(ROUTING.format(base="http://fake-crm"))
    routing = load_routing({"SIRO_CRM_CONNECTIONS": str(path), "T_SF_ID": SF_ID_VALUE, "T_SF_SECRET": SF_SECRET,
                            "T_HS_TOKEN": HS_TOKEN, "T_HTTP_TOKEN": HTTP_TOKEN})
    bed.load(D1, _recordings())
    factory = SinkFactory(bed.connect, run_id="run1", transport=Echoing(bed.transport, mode),
                          sleep=bed.clock.sleep, clock=bed.clock.monotonic, now=bed.clock.now)
    with caplog.at_level(logging.DEBUG):
        report = Delivery(bed.connect, routing, run_id="run1", sinks=factory, now=bed.clock.now).run()
    said = everything_said(bed, caplog, report)
    # The errors did reach the tables and the log, scrubbed.
    assert report.delivered == 1 and "***" in said
    if mode == "refused":
        assert (report.failed, report.stopped) == (3, [])
        messages = [m for (m,) in bed.con.execute("SELECT error_message FROM siro.crm_writeback_log WHERE outcome = 'failed'").fetchall()]
        assert len(messages) == 3 and all("LocalProtocolError: Illegal header value b'Bearer ***'" in m for m in messages)
    else:
        assert report.stopped == ["salesforce: echo"] and "client_secret=***" in said
    assert_never_said(said)
