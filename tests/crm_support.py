"""A test bed for CRM writebacks: an in-memory warehouse, the fake CRMs on fake time, and
one routing entry per sink.

Connection ids: `ic_sf` -> fake Salesforce, `ic_hs` -> fake HubSpot, `ic_http` -> the
generic fake, anything else -> the outbox.
"""

from __future__ import annotations

import contextlib
import json
import threading
from datetime import date, datetime, timezone

import duckdb

from siro_assets.crm import Delivery, Routing
from siro_assets.crm.config import HttpSettings, HubSpotSettings, OutboxSettings, SalesforceSettings
from siro_assets.crm.sinks import SinkFactory
from siro_assets.warehouse.connection import DEFAULT_SCHEMA, use_schema
from fake_crms import (
    CrmFaults, FakeCrms, FakeCrmTransport, FakeHttpCrm, FakeHubSpot, FakeSalesforce, SteppingClock,
)
from siro_assets.transforms import CRM_WRITEBACK_PLAN, rebuild_partitions

from tests.raw_payloads import load_raw, recording, ref

START = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)
BASE = "http://fake-crm"

SF_ID = {"opportunity": "006000000000001AAA", "account": "001000000000001AAA", "contact": "003000000000001AAA",
         "lead": "00Q000000000001AAA", "engagement": "00U000000000001AAA", "user": "005000000000001AAA"}


def settings(**overrides) -> dict:
    """One settings object per sink, with `overrides[sink]` merged in."""
    sf = dict(login_url=f"{BASE}/salesforce", client_id="fake-client-id", client_secret="fake-client-secret")
    hs = dict(base_url=f"{BASE}/hubspot", token="fake-hubspot-token")
    http = dict(url=f"{BASE}/http", token="fake-http-token")
    return {
        "ic_sf": SalesforceSettings(**{**sf, **overrides.get("salesforce", {})}),
        "ic_hs": HubSpotSettings(**{**hs, **overrides.get("hubspot", {})}),
        "ic_http": HttpSettings(**{**http, **overrides.get("http", {})}),
        "*": OutboxSettings(**overrides.get("outbox", {})),
    }


class Bed:
    """Warehouse + fake CRMs + delivery runs, all on one stepping clock."""

    def __init__(self, *, fault_rate: float = 0.0, fault_seed: int = 0, routing: Routing | None = None,
                 salesforce: dict | None = None, hubspot: dict | None = None, http: dict | None = None,
                 fault_kinds: dict | None = None) -> None:
        self.clock = SteppingClock(START)
        kinds = fault_kinds or {}

        def faults(salt: int, name: str) -> CrmFaults:
            extra = {"kinds": kinds[name]} if name in kinds else {}
            return CrmFaults(rate=fault_rate, seed=fault_seed * 10 + salt, **extra)

        self.sf = FakeSalesforce(self.clock, faults=faults(1, "salesforce"), **(salesforce or {}))
        self.hs = FakeHubSpot(self.clock, faults=faults(2, "hubspot"), **(hubspot or {}))
        self.http = FakeHttpCrm(self.clock, faults=faults(3, "http"), **(http or {}))
        self.transport = FakeCrmTransport(FakeCrms(self.sf, self.hs, self.http))
        self.routing = routing or Routing(connections=settings())
        self.con = duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")
        use_schema(self.con, DEFAULT_SCHEMA, create=True)  # as every warehouse connection does
        self.connections_opened = 0
        self.runs = 0
        # One connection shared by every delivery of the bed: a lock makes deliveries in
        # several threads take turns on it, as the writer lock makes processes do.
        self._turn = threading.RLock()

    @contextlib.contextmanager
    def connect(self):
        with self._turn:
            self.connections_opened += 1
            yield self.con

    def load(self, day: date, records: list[dict]) -> None:
        """Replace `day` of the raw table with `records` and rebuild its plan partition."""
        load_raw(self.con, records, [day])
        rebuild_partitions(self.con, CRM_WRITEBACK_PLAN, [day])

    def delivery(self, *, run_id: str | None = None, sinks=None, **options) -> Delivery:
        self.runs += 1
        run_id = run_id or f"run{self.runs}"
        factory = sinks or SinkFactory(self.connect, run_id=run_id, transport=self.transport,
                                       sleep=self.clock.sleep, clock=self.clock.monotonic, now=self.clock.now)
        return Delivery(self.connect, options.pop("routing", self.routing), run_id=run_id, sinks=factory,
                        now=self.clock.now, **options)

    def run(self, partitions=None, **options):
        return self.delivery(**options).run(partitions)

    def log(self, columns="external_id, crm_field_name, outcome, error_code", where="TRUE"):
        return self.con.execute(
            f"SELECT {columns} FROM siro.crm_writeback_log WHERE {where} ORDER BY attempted_at, external_id, crm_field_name, outcome"
        ).fetchall()

    def state(self, columns="external_id, field_key, json(acked_value)::VARCHAR, acked_recording_id, last_outcome"):
        return self.con.execute(f"SELECT {columns} FROM siro.crm_writeback_state ORDER BY ALL").fetchall()

    def outbox(self):
        return [
            (e, f, json.loads(v))
            for e, f, v in self.con.execute(
                "SELECT external_id, crm_field_name, value FROM siro.crm_outbox ORDER BY queued_at, external_id, crm_field_name").fetchall()
        ]


def crm_block(connection: str, **objects) -> dict:
    """A recording's `crm` block on `connection`; objects default to the SF_ID records."""
    block = {"integrationConnectionId": connection}
    for name, external in objects.items():
        if name in ("contacts", "users"):
            block[name] = [ref(f"s_{e}", e) for e in external]
        else:
            block[name] = ref(f"s_{external}", external)
    return block


def extraction(value, *mappings: tuple[str, str], name: str = "x") -> dict:
    """One entity extraction with (model, field) mappings."""
    return {"name": name, "value": value, "mappings": [{"crmModelName": m, "crmFieldName": f} for m, f in mappings]}


__all__ = ["BASE", "Bed", "SF_ID", "START", "crm_block", "extraction", "recording", "settings"]
