"""A run for today completes while a long backfill is still fetching (two `dg launch`
processes, the repo's dagster.yaml, one warehouse file)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from datetime import date
from pathlib import Path

import pytest
from dagster import DagsterInstance

from siro_assets.api_client.timestamps import parse_ts
from siro_assets.simulator import FixedClock, SimulatorApi, World, WorldConfig
from siro_assets.simulator.server import run_in_thread
from siro_assets.warehouse.connection import duckdb_connection
from tests.support import NOW

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TOKEN = "e2e-writer-slot-token"
BACKFILL = (date(2026, 2, 1), date(2026, 2, 3))
TODAY = NOW.date()


class _GatedApi(SimulatorApi):
    """Holds every list request for the backfill's days until `gate` opens, so the
    backfill is provably still fetching; `backfill_waiting` says one request is held."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.gate = threading.Event()
        self.backfill_waiting = threading.Event()

    def _list(self, params):
        start = params.get("createdAt:gt")
        if start and BACKFILL[0] <= parse_ts(start).date() <= BACKFILL[1]:
            self.backfill_waiting.set()
            self.gate.wait(120)
        return super()._list(params)


def _launch(*selection: str) -> list[str]:
    return [str(BIN / "dg"), "launch", "--assets", "siro/recordings*", *selection]


def test_todays_run_completes_while_a_backfill_is_fetching(tmp_path, monkeypatch):
    api = _GatedApi(World(WorldConfig()), FixedClock(NOW), token=TOKEN)
    base_url, stop = run_in_thread(api)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with DagsterInstance.get() as instance:  # create the instance storage up front
        instance.get_runs(limit=1)
    database = tmp_path / "warehouse.duckdb"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIRO_")}
    env.update(DAGSTER_HOME=str(home), SIRO_API_BASE_URL=base_url, SIRO_API_TOKEN=TOKEN,
               SIRO_DUCKDB_PATH=str(database), VIRTUAL_ENV=str(BIN.parent))
    backfill = subprocess.Popen(
        _launch("--partition-range", f"{BACKFILL[0]}...{BACKFILL[1]}"),
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert api.backfill_waiting.wait(180), "the backfill never started fetching"
        today = subprocess.run(_launch("--partition", TODAY.isoformat()), env=env, cwd=ROOT,
                               capture_output=True, text=True, timeout=300)
        assert today.returncode == 0, today.stdout[-3000:] + today.stderr[-3000:]
        assert backfill.poll() is None, "the backfill should still be waiting on the API"
        with duckdb_connection(database, read_only=True) as con:
            assert con.execute("SELECT DISTINCT partition_date FROM siro.recordings").fetchall() == [(TODAY,)]
            assert con.execute("SELECT count(*) FROM siro.recording_crm").fetchone()[0] > 0
    finally:
        api.gate.set()
        output = backfill.communicate(timeout=300)[0]
        stop()
    assert backfill.returncode == 0, output[-3000:]
    with duckdb_connection(database, read_only=True) as con:
        days = {d for (d,) in con.execute("SELECT DISTINCT partition_date FROM siro.recordings").fetchall()}
    assert days == {BACKFILL[0], date(2026, 2, 2), BACKFILL[1], TODAY}
