"""Two machines sharing nothing local (issue 19): two processes, each with its own scratch
directory and DAGSTER_HOME, sharing only the PostgreSQL catalog and moto's S3, configured
through the documented environment, against the simulator over HTTP, at the same time:

1. a backfill of different days (machine A days 1-2, B days 3-4);
2. the same partitions at the same moment: each machine's sensor lists the same changes
   and both run the changes-only runs for the same days (today among them) at once;
3. records change in the simulator, and both sensors tick and run again;

with writebacks to a fake CRM over HTTP from every run. The tables equal the same steps
on a DuckDB file, and no write reached the CRM twice. `tests/lake/machine.py` is a machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from fake_crms.generic import FakeHttpCrm
from fake_crms.router import FakeCrms
from fake_crms.server import run_in_thread as crms_in_thread
from siro_assets.simulator import SimulatorApi, World, WorldConfig
from siro_assets.simulator.clock import FixedClock, WallClock
from siro_assets.simulator.server import run_in_thread
from siro_assets.transforms import DERIVED_TABLES
from siro_assets.warehouse.backend import open_warehouse
from siro_assets.warehouse.lake import LakeSettings

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "two-machines-token"
WORLD = World(WorldConfig(recordings_per_day=20))
STEP_TIMEOUT = 900  # seconds; a step takes ~20 s on an idle 2-core machine, far more under load
LOOKBACK = 4 * 3600  # the sensor's first tick re-lists what changed since the backfill


def _times() -> tuple[datetime, datetime, datetime]:
    """The simulated instants of the three steps: an hour apart, the last one just past."""
    last = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=5)
    return last - timedelta(minutes=150), last - timedelta(minutes=60), last


class Bed:
    """The shared services: the simulator over HTTP on a clock the test sets, the fake CRM."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path, self.clock = tmp_path, FixedClock(datetime.now(timezone.utc))
        self.api_url, self._stop_api = run_in_thread(SimulatorApi(WORLD, self.clock, token=TOKEN))
        self.crm = FakeHttpCrm(WallClock())
        self.crm_url, self._stop_crm = crms_in_thread(FakeCrms(http=self.crm))
        # The DuckDB-file reference writes back to a CRM of its own, so it can run beside
        # the machines without its writes counting as theirs.
        self.reference_crm_url, self._stop_reference_crm = crms_in_thread(FakeCrms(http=FakeHttpCrm(WallClock())))

    def close(self) -> None:
        self._stop_api()
        self._stop_crm()
        self._stop_reference_crm()

    def machine_env(self, name: str, warehouse: dict[str, str], first_day) -> dict[str, str]:
        scratch = self.tmp_path / name
        (scratch / "home").mkdir(parents=True)
        shutil.copy(ROOT / "dagster.yaml", scratch / "home" / "dagster.yaml")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SIRO_", "AWS_", "DAGSTER_"))}
        env.update(
            PYTHONPATH=str(ROOT), DAGSTER_HOME=str(scratch / "home"),
            SIRO_API_BASE_URL=self.api_url, SIRO_API_TOKEN=TOKEN,
            SIRO_PARTITIONS_START=first_day.isoformat(), SIRO_SENSOR_LOOKBACK_SECONDS=str(LOOKBACK),
            SIRO_SENSOR_MAX_RUNS_PER_TICK="10",
            SIRO_CRM_SINK="http", SIRO_CRM_TOKEN="fake-http-token",
            SIRO_CRM_WRITEBACK_URL=f"{self.crm_url if warehouse else self.reference_crm_url}/http",
            # Stages, the request budget and (for the reference) the warehouse file: local.
            SIRO_DUCKDB_PATH=str(scratch / "siro.duckdb"),
            AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
            **warehouse,
        )
        return env

    def step(self, at: datetime, jobs: list[tuple[dict[str, str], list[str]]]) -> list[dict]:
        """Every (env, command) machine at once on the simulator frozen at `at`."""
        self.clock.set(at)
        # Several machines start together, once every interpreter has loaded the definitions.
        start_at = time.time() + (6 if len(jobs) > 1 else 0)
        procs = [subprocess.Popen([sys.executable, "-m", "tests.lake.machine", command[0], at.isoformat(),
                                   str(start_at), *command[1:]], cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for env, command in jobs]
        reports = []
        for proc in procs:
            out, err = proc.communicate(timeout=STEP_TIMEOUT)
            assert proc.returncode == 0, err[-4000:]
            reports.append(json.loads(out.strip().splitlines()[-1]))
        for report in reports:
            assert report["runs"] and all(r["success"] for r in report["runs"]), reports
        return reports


def _snapshot(con) -> dict[str, list[tuple]]:
    """Every table's rows, ordered, without what only says when or by which run it was written."""
    tables = {"recordings": "* EXCLUDE (ingested_at)",
              **{t.name: "*" for t in DERIVED_TABLES},
              # The writeback ledger: what each field holds in the CRM, and how often it was sent.
              "crm_writeback_state": "integration_connection_id, object_type, external_id, field_key, "
                                     "json(acked_value)::VARCHAR, deliveries, last_outcome, pending_value IS NULL"}
    return {name: con.execute(f"SELECT {columns} FROM siro.{name} ORDER BY ALL").fetchall()
            for name, columns in tables.items()}


def test_two_machines_sharing_only_the_catalog_and_s3_end_equal_to_one_file(catalog_dsn, s3_server, tmp_path):
    endpoint, bucket = s3_server
    t1, t2, t3 = _times()
    today = t3.date()
    days = [(today - timedelta(days=n)).isoformat() for n in range(4, 0, -1)]
    lake = {"SIRO_WAREHOUSE": "ducklake", "SIRO_DUCKLAKE_CATALOG": catalog_dsn,
            "SIRO_DUCKLAKE_DATA_PATH": f"s3://{bucket}/two-machines/",
            "AWS_ACCESS_KEY_ID": "test-key", "AWS_SECRET_ACCESS_KEY": "test-secret",
            "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint}
    bed = Bed(tmp_path)
    try:
        first_day = today - timedelta(days=10)
        a, b = bed.machine_env("machine_a", lake, first_day), bed.machine_env("machine_b", lake, first_day)
        # The same steps on a DuckDB file, by one machine, beside them (its own CRM).
        reference = bed.machine_env("reference", {}, first_day)
        bed.step(t1, [(a, ["backfill", *days[:2]]), (b, ["backfill", *days[2:]]),
                            (reference, ["backfill", *days])])
        same = bed.step(t2, [(a, ["sensor"]), (b, ["sensor"]), (reference, ["sensor"])])[:2]
        changed = bed.step(t3, [(a, ["sensor"]), (b, ["sensor"]), (reference, ["sensor"])])[:2]
        lake_requests = list(bed.crm.requests)
    finally:
        bed.close()

    # Both machines ran today's changes-only run, and the same days, at the same moment.
    for step in (same, changed):
        ran = [{r["days"] for r in report["runs"] if r["changes_only"]} for report in step]
        # A run's days: one day, or a range `first...last` (contiguous changed days).
        assert ran[0] == ran[1] and any(today.isoformat() in (d, d.split("...")[-1]) for d in ran[0]), step
    settings = LakeSettings(catalog=catalog_dsn, data_path=lake["SIRO_DUCKLAKE_DATA_PATH"],
                            aws_access_key_id="test-key", aws_secret_access_key="test-secret",
                            aws_region="us-east-1", aws_endpoint_url=endpoint)
    with open_warehouse(lake=settings, read_only=True) as con:
        on_lake = _snapshot(con)
    with open_warehouse(tmp_path / "reference" / "siro.duckdb", read_only=True) as con:
        on_file = _snapshot(con)
    assert all(on_file[name] for name in on_file), {name: len(rows) for name, rows in on_file.items()}
    for name in on_file:
        assert on_lake[name] == on_file[name], name

    # The CRM side: every PATCH of the lake's runs carried distinct field values and keys.
    writes = Counter((r["target"], field, json.dumps(value, sort_keys=True))
                     for r in lake_requests for field, value in json.loads(r["body"]).items())
    keys = Counter(r["key"] for r in lake_requests)
    assert writes and max(writes.values()) == 1, writes.most_common(3)
    assert max(keys.values()) == 1, keys.most_common(3)
