"""Issue 16 item 5 end to end: two deliveries of the same four days, started at the same
moment from two processes against the fake Salesforce and HubSpot (a third process, real
sockets), twice over. No write the CRMs acknowledged is sent again, and the writeback
log says exactly what the CRMs saw."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest

from siro_assets.transforms import CRM_WRITEBACK_PLAN, rebuild_partitions
from siro_assets.warehouse.connection import duckdb_connection

from tests.crm_support import crm_block, extraction, recording
from tests.e2e.processes import ROOT, fake_crms
from tests.raw_payloads import load_raw

pytestmark = pytest.mark.e2e
DAYS = [date(2026, 1, 5) + timedelta(days=n) for n in range(4)]
PER_DAY = 12       # records per CRM per day: 4 days x 12 x 2 fields x 2 CRMs = 192 fields


def _recordings(day: date, version: str) -> list[dict]:
    out = []
    for n in range(PER_DAY):
        sf = f"006{day.day:04d}{n:08d}AAA"
        out.append(recording(f"sf_{day.day}_{n}", day, crm=crm_block("ic_sf", opportunity=sf), entityExtractions=[
            extraction(f"{version} note {day.day}.{n}", ("Opportunity", "Note__c"), name="a"),
            extraction(f"{version} step {day.day}.{n}", ("Opportunity", "Description"), name="b")]))
        out.append(recording(f"hs_{day.day}_{n}", day, crm=crm_block("ic_hs", opportunity=f"d{day.day}_{n}"),
                             entityExtractions=[
            extraction(f"{version} note {day.day}.{n}", ("Opportunity", "note"), name="a"),
            extraction(f"{version} step {day.day}.{n}", ("Opportunity", "description"), name="b")]))
    return out


def _load(database: Path, days: list[date], version: str) -> None:
    with duckdb_connection(database) as con:
        for day in days:
            load_raw(con, _recordings(day, version), [day])
        rebuild_partitions(con, CRM_WRITEBACK_PLAN, days)


def _two_at_once(database: Path, base: str, round_: int) -> list[dict]:
    start_at = time.time() + 8     # both interpreters are up and importing by then
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.e2e.deliver_process", str(database), base, f"round{round_}-{who}",
             str(start_at), *[d.isoformat() for d in DAYS]],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        for who in ("a", "b")
    ]
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-3000:]
        reports.append(json.loads(out.strip().splitlines()[-1]))
    return reports


def test_two_deliveries_started_at_once_never_resend_an_acknowledged_write(tmp_path):
    with fake_crms() as base:
        database = tmp_path / "warehouse.duckdb"
        fields = len(DAYS) * PER_DAY * 2 * 2

        _load(database, DAYS, "v1")
        first = _two_at_once(database, base, 1)
        # Round two: two of the days change, both processes start again.
        _load(database, DAYS[:2], "v2")
        second = _two_at_once(database, base, 2)

        journal = httpx.get(f"{base}/_journal", timeout=10).json()
        applied = journal["salesforce"] + journal["hubspot"]
        # On the CRM side: every value written once, and acknowledged; no re-sends.
        per_write = Counter((e["crm_object"], e["record_id"], e["field"].lower(), e["value"]) for e in applied)
        assert max(per_write.values()) == 1, per_write.most_common(3)
        assert len(applied) == fields + fields // 2 and all(e["acknowledged"] for e in applied)
        # Each round, the two runs delivered the fields between them, exactly once.
        assert sum(r["delivered"] for r in first) == fields and sum(r["failed"] for r in first) == 0
        assert sum(r["delivered"] for r in second) == fields // 2 and sum(r["failed"] for r in second) == 0

        with duckdb_connection(database, read_only=True) as con:
            log = con.execute("SELECT run_id, outcome, count(*) FROM siro.crm_writeback_log GROUP BY ALL").fetchall()
            delivered = con.execute(
                "SELECT external_id, crm_field_name, json(value)::VARCHAR FROM siro.crm_writeback_log "
                "WHERE outcome = 'delivered'").fetchall()
            pending = con.execute(
                "SELECT count(*) FROM siro.crm_writeback_state WHERE pending_value IS NOT NULL").fetchall()
            runs = con.execute("SELECT run_id, delivered FROM siro.crm_delivery_runs ORDER BY run_id").fetchall()
            lease = con.execute("SELECT count(*) FROM siro.crm_delivery_lease").fetchall()
        # The log agrees with the CRMs: one delivered row per applied write, nothing else.
        assert {outcome for _, outcome, _ in log} == {"delivered"}
        assert len(delivered) == len(set(delivered)) == len(applied)
        assert pending == [(0,)] and lease == [(0,)]
        reports = {f"round{n}-{w}": r["delivered"] for n, pair in ((1, first), (2, second))
                   for w, r in zip("ab", pair)}
        assert runs == sorted(reports.items())
