"""The three HTTP sinks share one constructor: the client it builds per sink."""

import httpx
import pytest

from siro_assets.crm.config import HttpSettings, HubSpotSettings, SalesforceSettings
from siro_assets.crm.sinks.client import HttpCrmSink
from siro_assets.crm.sinks.http import HttpSink
from siro_assets.crm.sinks.hubspot import HubSpotSink
from siro_assets.crm.sinks.salesforce import SalesforceSink

SECRET = "s3cr3t-value"


def _sinks():
    return [
        HttpSink(HttpSettings(url="https://crm.example", token=SECRET, max_attempts=2), timeout=7.0),
        HubSpotSink(HubSpotSettings(token=SECRET, requests_per_second=4.0, rate_limit_window_seconds=3.0),
                    timeout=7.0),
        SalesforceSink(SalesforceSettings(login_url="https://sf.example", client_id="id", client_secret=SECRET),
                       timeout=7.0),
    ]


@pytest.mark.parametrize("index", range(3))
def test_every_http_sink_builds_its_client_through_the_shared_base(index):
    sink = _sinks()[index]
    assert isinstance(sink, HttpCrmSink)
    assert sink.calls.client.timeout == httpx.Timeout(7.0)
    assert sink.calls.max_attempts == sink.settings.max_attempts
    assert sink.calls.stats is sink.stats
    assert SECRET not in repr(sink) and repr(sink).startswith(type(sink).__name__ + "(")
    sink.close()
    assert sink.calls.client.is_closed


def test_the_bearer_header_and_pacing_differ_per_sink():
    http, hubspot, salesforce = _sinks()
    assert http.calls.client.headers["Authorization"] == f"Bearer {SECRET}"
    assert hubspot.calls.client.headers["Authorization"] == f"Bearer {SECRET}"
    assert "Authorization" not in salesforce.calls.client.headers   # its token comes from OAuth, per call
    assert hubspot.calls.rate_limit_window == 3.0 and http.calls.rate_limit_window == 10.0
    tokenless = HttpSink(HttpSettings(url="https://crm.example"))
    assert "Authorization" not in tokenless.calls.client.headers
