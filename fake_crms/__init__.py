"""Fake CRMs for the writeback tests and demos: Salesforce, HubSpot and a generic HTTP
endpoint, with the real request and response shapes, fault injection (including a
response lost *after* a write was applied) and an injectable clock.

In-process: `httpx.Client(transport=FakeCrmTransport(FakeCrms(...)))` against
`http://fake-crm/salesforce` etc. Over HTTP: `python -m fake_crms`.

Not part of the package users install (the wheel ships `siro_assets` only): it lives at
the repository's root for the tests, the benchmarks and the demo. Imports only the
simulator's clock and server helpers; never Dagster, DuckDB or `siro_assets.crm` (the fakes
must not share code with the sinks they test).
"""

from .common import (
    DISCONNECT, LOCKED, LOST_RESPONSE, RATE_LIMIT, RECORD_UNAVAILABLE, RUNNING_TOO_LONG, SERVER_ERROR, UNAVAILABLE,
    UNKNOWN_EXCEPTION, CrmFaults, Journal, JournalEntry, LostResponse, SteppingClock,
)
from .generic import FakeHttpCrm
from .hubspot import FakeHubSpot
from .router import FakeCrms
from .salesforce import FakeSalesforce
from .server import create_app, run_in_thread
from .transport import FakeCrmTransport

__all__ = [
    "DISCONNECT", "LOCKED", "LOST_RESPONSE", "RATE_LIMIT", "RECORD_UNAVAILABLE", "RUNNING_TOO_LONG", "SERVER_ERROR",
    "UNAVAILABLE", "UNKNOWN_EXCEPTION",
    "CrmFaults", "FakeCrmTransport", "FakeCrms", "FakeHttpCrm", "FakeHubSpot", "FakeSalesforce", "Journal",
    "JournalEntry", "LostResponse", "SteppingClock", "create_app", "run_in_thread",
]
