"""Any warehouse file name works, including the README's own default `data/siro.duckdb`.

DuckDB names a directly opened file's catalog after its stem, so `siro.duckdb` used to
collide with the `siro` schema ("Ambiguous reference to catalog or schema").
"""

from __future__ import annotations

from datetime import date

import pytest
from dagster import materialize

from tests.default_instance import derived_assets, recordings
from siro_assets.component.project import project_resources
from siro_assets.simulator import FixedClock, SimulatorApi, World, WorldConfig
from siro_assets.simulator.server import run_in_thread
from siro_assets.warehouse.connection import duckdb_connection
from tests.raw_payloads import load_raw, recording
from tests.support import NOW

DAY = date(2026, 3, 2)
TOKEN = "file-names-test-token"


@pytest.mark.parametrize(
    "relative",
    ["siro.duckdb", "data/siro.duckdb", "my wärehouse 日本/siro data ü.duckdb", "it's.duckdb", "select.duckdb"],
)
def test_the_warehouse_opens_under_any_file_name(tmp_path, relative):
    path = tmp_path / relative
    with duckdb_connection(path) as con:
        load_raw(con, [recording("a", DAY)], [DAY])
    with duckdb_connection(path, read_only=True) as con:
        assert con.execute("SELECT id FROM siro.recordings").fetchall() == [("a",)]
    assert path.exists()


def _all_tables(path) -> dict[str, int]:
    with duckdb_connection(path, read_only=True) as con:
        names = [n for (n,) in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'siro' ORDER BY 1").fetchall()]
        return {n: con.execute(f"SELECT count(*) FROM siro.{n}").fetchone()[0] for n in names}


def _materialize_everything(resources) -> None:
    result = materialize([recordings, *derived_assets], resources=resources, partition_key=DAY.isoformat())
    assert result.success


@pytest.fixture
def no_siro_env(monkeypatch, tmp_path):
    for name in ("SIRO_API_TOKEN", "SIRO_API_BASE_URL", "SIRO_DUCKDB_PATH", "SIRO_SIMULATOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # the defaults are relative to the working directory
    return tmp_path


def test_the_default_path_with_real_api_settings(no_siro_env, monkeypatch):
    api = SimulatorApi(World(WorldConfig()), FixedClock(NOW), token=TOKEN)
    base_url, stop = run_in_thread(api)
    try:
        monkeypatch.setenv("SIRO_API_TOKEN", TOKEN)
        monkeypatch.setenv("SIRO_API_BASE_URL", base_url)
        resources = project_resources()
        _materialize_everything(resources)
    finally:
        stop()
    tables = _all_tables(no_siro_env / "data" / "siro.duckdb")
    assert tables["recordings"] > 0 and "recording_crm" in tables


def test_the_default_path_with_the_simulator(no_siro_env, monkeypatch):
    monkeypatch.setenv("SIRO_SIMULATOR", "1")
    _materialize_everything(project_resources())
    tables = _all_tables(no_siro_env / "data" / "siro_simulator.duckdb")
    assert tables["recordings"] > 0 and "recording_crm" in tables
