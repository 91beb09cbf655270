"""CRM delivery benchmark: fields per second through each sink, and the ledger's share.

Builds a plan of N CRM fields (N/4 records x 4 fields) in a DuckDB file, delivers them
to the in-process fake Salesforce, HubSpot and generic CRM (no network, no pacing, no
faults) and to the outbox, then runs again (everything unchanged) to time the ledger
comparison alone.

    .venv/bin/python bench/crm_delivery.py [fields]

Not a test (pytest does not collect `bench/`).
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from siro_assets.crm import Delivery, Routing  # noqa: E402
from siro_assets.crm.config import HttpSettings, HubSpotSettings, OutboxSettings, SalesforceSettings  # noqa: E402
from siro_assets.crm.sinks import SinkFactory  # noqa: E402
from fake_crms import (  # noqa: E402
    FakeCrms, FakeCrmTransport, FakeHttpCrm, FakeHubSpot, FakeSalesforce, SteppingClock,
)
from siro_assets.transforms import CRM_WRITEBACK_PLAN, rebuild_partitions  # noqa: E402
from siro_assets.warehouse.connection import open_duckdb  # noqa: E402
from tests.crm_support import START, crm_block, extraction  # noqa: E402
from tests.raw_payloads import load_raw, recording  # noqa: E402

DAY = date(2026, 1, 5)
FIELDS = {"ic_sf": ["Note__c", "Count__c", "Flag__c", "Day__c"], "ic_hs": ["note", "count", "flag", "day"],
          "ic_http": ["Note", "Count", "Flag", "Day"], "ic_out": ["Note", "Count", "Flag", "Day"]}


def records_for(connection: str, n_records: int) -> list[dict]:
    out = []
    for n in range(n_records):
        rid = f"006{n:012d}AAA" if connection == "ic_sf" else f"{connection}-{n}"
        names = FIELDS[connection]
        out.append(recording(f"{connection}-rec{n}", DAY, crm=crm_block(connection, opportunity=rid), entityExtractions=[
            extraction(f"note {n}", ("Opportunity", names[0]), name="a"),
            extraction(n, ("Opportunity", names[1]), name="b"),
            extraction(n % 2 == 0, ("Opportunity", names[2]), name="c"),
            extraction("2026-02-03", ("Opportunity", names[3]), name="d"),
        ]))
    return out


def main() -> None:
    fields = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    clock = SteppingClock(START)
    base = "http://fake-crm"
    transport = FakeCrmTransport(FakeCrms(FakeSalesforce(clock), FakeHubSpot(clock, requests_per_window=10**9),
                                          FakeHttpCrm(clock)))
    routing = Routing(connections={
        "ic_sf": SalesforceSettings(login_url=f"{base}/salesforce", client_id="fake-client-id",
                                    client_secret="fake-client-secret"),
        "ic_hs": HubSpotSettings(base_url=f"{base}/hubspot", token="fake-hubspot-token", requests_per_second=1e9),
        "ic_http": HttpSettings(url=f"{base}/http", token="fake-http-token"),
        "*": OutboxSettings(),
    })
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.duckdb"

        @contextlib.contextmanager
        def connect():
            con = open_duckdb(path)
            try:
                yield con
            finally:
                con.close()

        per_sink = fields // 4 // len(FIELDS)
        with connect() as con:
            load_raw(con, [r for c in FIELDS for r in records_for(c, per_sink)], [DAY])
            rebuild_partitions(con, CRM_WRITEBACK_PLAN, [DAY])
        for label in ("first run (everything due)", "second run (everything unchanged)"):
            factory = SinkFactory(connect, run_id=label, transport=transport, sleep=clock.sleep, clock=clock.monotonic)
            started = time.perf_counter()
            report = Delivery(connect, routing, run_id=label, sinks=factory).run([DAY])
            elapsed = time.perf_counter() - started
            total = report.delivered + report.unchanged
            print(f"{label}: {total} fields in {elapsed:.1f} s ({total / elapsed:,.0f} fields/s); "
                  f"delivered {report.delivered}, unchanged {report.unchanged}, API calls {report.api_calls}")


if __name__ == "__main__":
    main()
