"""Issue 16, item 5 end to end: two deliveries of the same days, started at the same
moment from two processes, against the fake CRMs over HTTP, never send an acknowledged
write twice, and the writeback log records each delivered field once."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from datetime import date
from pathlib import Path

import pytest

from fake_crms import FakeCrms, FakeHttpCrm, FakeHubSpot, FakeSalesforce, run_in_thread
from siro_assets.simulator.clock import WallClock
from siro_assets.transforms import CRM_WRITEBACK_PLAN, rebuild_partitions
from siro_assets.warehouse.connection import duckdb_connection
from tests.crm_support import crm_block, extraction
from tests.raw_payloads import load_raw, recording

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DAYS = [date(2026, 3, d) for d in (1, 2, 3, 4)]
PER_DAY = 60

DELIVER = textwrap.dedent("""
    import sys, time
    from siro_assets.crm import Delivery, Routing
    from siro_assets.crm.config import HttpSettings
    from siro_assets.pipeline.resources import WarehouseResource

    database, base, run_id, start_at = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    routing = Routing(connections={"*": HttpSettings(url=base + "/http", token="fake-http-token")})
    warehouse = WarehouseResource(database=database)
    while time.time() < start_at:  # both processes start delivering at the same moment
        time.sleep(0.005)
    report = Delivery(warehouse.get_connection, routing, run_id=run_id).run()
    print("REPORT", report.delivered, report.failed, "|".join(report.stopped))
""")


def test_two_deliveries_at_once_never_resend_an_acknowledged_write(tmp_path):
    database = tmp_path / "warehouse.duckdb"
    with duckdb_connection(database) as con:
        for day in DAYS:
            load_raw(con, [recording(f"r{day.day}_{n}", day, crm=crm_block("ic_http", opportunity=f"o{day.day}_{n}"),
                                     entityExtractions=[extraction(f"stage {n}", ("Deal", "Stage"))])
                           for n in range(PER_DAY)], [day])
        rebuild_partitions(con, CRM_WRITEBACK_PLAN, DAYS)
    clock = WallClock()
    http = FakeHttpCrm(clock)
    base, stop = run_in_thread(FakeCrms(FakeSalesforce(clock), FakeHubSpot(clock), http))
    try:
        start_at = time.time() + 8  # past both interpreters' import time
        procs = [subprocess.Popen([sys.executable, "-c", DELIVER, str(database), base, f"run-{n}", str(start_at)],
                                  cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for n in (1, 2)]
        outputs = [p.communicate(timeout=240)[0] for p in procs]
    finally:
        stop()
    for proc, output in zip(procs, outputs):
        assert proc.returncode == 0, output[-3000:]
    expected = len(DAYS) * PER_DAY
    reports = [line.split() for out in outputs for line in out.splitlines() if line.startswith("REPORT")]
    assert sum(int(r[1]) for r in reports) == expected
    assert http.journal.resent_after_ack() == []
    assert len(http.journal.entries) == expected
    with duckdb_connection(database, read_only=True) as con:
        delivered = con.execute(
            "SELECT count(*), count(DISTINCT (external_id, crm_field_name)) FROM siro.crm_writeback_log "
            "WHERE outcome = 'delivered'").fetchall()[0]
    assert delivered == (expected, expected)
