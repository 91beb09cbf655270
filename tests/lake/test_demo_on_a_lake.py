"""`make demo` (scripts/demo.py: `dg launch` per day, checks included) with
SIRO_WAREHOUSE=ducklake, a real PostgreSQL catalog and a directory data path: the whole
pipeline runs on the lake, and the script reports the lake's tables, not a file's."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from siro_assets.transforms import DERIVED_TABLES
from siro_assets.warehouse.backend import open_warehouse
from siro_assets.warehouse.lake import LakeSettings

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_make_demo_runs_the_whole_pipeline_on_a_lake(catalog_dsn, tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    data_path = tmp_path / "lake_data"
    local = tmp_path / "local"  # where a file warehouse would have gone
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIRO_")}
    env.update(
        DAGSTER_HOME=str(home), VIRTUAL_ENV=str(Path(sys.executable).parent.parent), PYTHONPATH=str(ROOT),
        SIRO_SIMULATOR="1", SIRO_DEMO_DAYS="1", SIRO_SENSOR_INTERVAL_SECONDS="30",
        SIRO_PARTITIONS_START=(date.today() - timedelta(days=10)).isoformat(),
        SIRO_WAREHOUSE="ducklake", SIRO_DUCKLAKE_CATALOG=catalog_dsn, SIRO_DUCKLAKE_DATA_PATH=str(data_path),
        SIRO_DUCKDB_PATH=str(local / "siro.duckdb"),
    )
    done = subprocess.run([sys.executable, "scripts/demo.py"], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]

    password = catalog_dsn.split("password=", 1)[1].split()[0]
    assert password not in output
    assert "DuckLake" in output and str(data_path) in output
    with open_warehouse(lake=LakeSettings(catalog=catalog_dsn, data_path=str(data_path)), read_only=True) as con:
        counts = {name: con.execute(f"SELECT count(*) FROM siro.{name}").fetchone()[0]
                  for name in ("recordings", *(t.name for t in DERIVED_TABLES))}
    assert counts["recordings"] > 0 and all(n > 0 for n in counts.values()), counts
    for name, n in counts.items():
        assert f"siro.{name}" in output and str(n) in output
    assert any(data_path.rglob("*.parquet"))
    assert not local.exists() or not any(local.rglob("*.duckdb"))  # no warehouse file was made
