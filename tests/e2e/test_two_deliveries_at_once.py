"""Issue 16, item 5 end to end: two deliveries of the same days, started at the same
moment from two processes, against `python -m fake_crms` (a third process) over HTTP.

On the CRM side (the fakes' journals, read over `GET /_journal`) no field is written
twice and every write is acknowledged; the writeback log records each delivered field
once, and exactly the fields the CRMs applied. The code before the lease sent every
write twice here (each process read the same due fields and sent them).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from collections import Counter
from datetime import date
from pathlib import Path

import httpx
import pytest

from siro_assets.transforms import CRM_WRITEBACK_PLAN, rebuild_partitions
from siro_assets.warehouse.connection import duckdb_connection
from tests.crm_support import crm_block, extraction
from tests.raw_payloads import load_raw, recording

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DAYS = [date(2026, 3, d) for d in (1, 2, 3, 4)]
PER_DAY = 20  # records per day and sink
SINKS = {  # connection id -> (fake, crm block object, external id of record n, (model, field))
    "ic_sf": ("salesforce", lambda n: f"006{n:012d}AAA", ("Opportunity", "Stage__c")),
    "ic_hs": ("hubspot", lambda n: str(10_000 + n), ("Deal", "note")),
    "ic_http": ("http", lambda n: f"deal-{n}", ("Deal", "Stage")),
}

DELIVER = textwrap.dedent("""
    import sys, time
    from siro_assets.crm import Delivery, Routing
    from siro_assets.crm.config import HttpSettings, HubSpotSettings, SalesforceSettings
    from siro_assets.pipeline.resources import WarehouseResource

    database, base, run_id, start_at = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    routing = Routing(connections={
        "ic_sf": SalesforceSettings(login_url=base + "/salesforce", client_id="fake-client-id",
                                    client_secret="fake-client-secret"),
        "ic_hs": HubSpotSettings(base_url=base + "/hubspot", token="fake-hubspot-token",
                                 rate_limit_window_seconds=0.01, requests_per_second=1000),
        "ic_http": HttpSettings(url=base + "/http", token="fake-http-token"),
    })
    warehouse = WarehouseResource(database=database)
    delivery = Delivery(warehouse.get_connection, routing, run_id=run_id)
    while time.time() < start_at:  # both processes start delivering at the same moment
        time.sleep(0.002)
    report = delivery.run()
    print("REPORT", report.delivered, report.failed, report.rejected, "|".join(report.stopped) or "-", flush=True)
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _seed(database: Path) -> int:
    with duckdb_connection(database) as con:
        for day in DAYS:
            records = []
            for connection, (_, external, mapping) in SINKS.items():
                for n in range(PER_DAY):
                    number = day.day * 100 + n
                    records.append(recording(
                        f"r_{connection}_{number}", day, crm=crm_block(connection, opportunity=external(number)),
                        entityExtractions=[extraction(f"stage {number}", mapping)]))
            load_raw(con, records, [day])
        rebuild_partitions(con, CRM_WRITEBACK_PLAN, DAYS)
    return len(DAYS) * PER_DAY * len(SINKS)


def test_two_processes_delivering_the_same_days_never_write_a_field_twice(tmp_path):
    database = tmp_path / "warehouse.duckdb"
    expected = _seed(database)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "fake_crms", "--port", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert "Fake CRMs on" in server.stdout.readline()
        base = f"http://127.0.0.1:{port}"
        start_at = time.time() + 6  # past both interpreters' imports
        runs = ["run-1", "run-2"]
        procs = [subprocess.Popen([sys.executable, "-c", DELIVER, str(database), base, run_id, str(start_at)],
                                  cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for run_id in runs]
        outputs = [p.communicate(timeout=120)[0] for p in procs]
        journals = httpx.get(f"{base}/_journal", timeout=10).json()
    finally:
        server.terminate()
        server.wait(timeout=10)
    for proc, output in zip(procs, outputs):
        assert proc.returncode == 0, output[-3000:]
    reports = {run_id: next(line.split(maxsplit=4)[1:] for line in out.splitlines() if line.startswith("REPORT"))
               for run_id, out in zip(runs, outputs)}

    # The CRM side: each field applied once, and acknowledged.
    applied = Counter((fake, e["record_id"], e["field"].lower()) for fake, entries in journals.items() for e in entries)
    assert sum(applied.values()) == expected
    assert [key for key, times in applied.items() if times > 1] == []
    assert all(e["acknowledged"] for entries in journals.values() for e in entries)
    assert {fake: len(entries) for fake, entries in journals.items()} == {
        fake: len(DAYS) * PER_DAY for fake, _, _ in SINKS.values()}

    # The runs: every write delivered once between them, none failed; a run that sent
    # nothing says which run held the lease.
    assert sum(int(r[0]) for r in reports.values()) == expected
    assert all(r[1] == "0" and r[2] == "0" for r in reports.values()), reports
    for run_id, (delivered, _, _, stopped) in reports.items():
        other = next(r for r in runs if r != run_id)
        if delivered == "0":
            assert f"run {other}" in stopped, reports

    # The log: one delivered row per field, for exactly the fields the CRMs applied.
    names = {"salesforce": "ic_sf", "hubspot": "ic_hs", "http": "ic_http"}
    with duckdb_connection(database, read_only=True) as con:
        logged = con.execute(
            "SELECT integration_connection_id, external_id, lower(crm_field_name) FROM siro.crm_writeback_log "
            "WHERE outcome = 'delivered'").fetchall()
        pending = con.execute("SELECT count(*) FROM siro.crm_writeback_state WHERE pending_value IS NOT NULL").fetchall()
    assert len(logged) == len(set(logged)) == expected
    assert set(logged) == {(names[fake], record, field) for fake, record, field in applied}
    assert pending == [(0,)]
