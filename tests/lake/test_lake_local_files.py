"""In lake mode no lock file or SQLite file is needed: a pipeline run paces on the token's
budget in PostgreSQL and writes the lake, and leaves no file beside the warehouse path
(a run's stage lives in `.staging/` only while the run holds it)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import psycopg2

from siro_assets import SiroComponent
from siro_assets.api_client.pacing import budget_key
from siro_assets.api_client.pg_budget import BUDGET_TABLE, PostgresRequestPacer
from siro_assets.pipeline.resources import RATE_BUDGET_FILE_NAME, WarehouseResource
from siro_assets.simulator.resource import SIMULATOR_TOKEN, SimulatedSiroApiResource
from siro_assets.warehouse.connection import writer_lock_path
from tests.integration.test_sensor import _pipeline_job
from tests.support import NOW

DAY = date(2026, 3, 2)


class _PacedSimulator(SimulatedSiroApiResource):
    """The simulator, but paced on the production shared budget, as a real token is."""

    def _shares_budget(self) -> bool:
        return True


def _files_beside(path: Path) -> list[str]:
    """Every file in the warehouse path's directory (a run's stage is gone once it ends)."""
    return sorted(str(p.relative_to(path.parent)) for p in path.parent.rglob("*") if p.is_file())


def test_a_lake_instance_paces_on_postgresql_not_on_a_file(tmp_path, monkeypatch):
    dsn = "host=db dbname=lake user=siro password=pw-not-shown"
    monkeypatch.setenv("SIRO_DUCKLAKE_CATALOG", dsn)
    monkeypatch.setenv("SIRO_API_TOKEN", "a-token")
    lake = SiroComponent.resolve_from_dict(
        {"warehouse": {"backend": "ducklake", "path": str(tmp_path / "w.duckdb"), "data_path": str(tmp_path / "d")}}
    )
    api = lake.api_resource()
    assert api.rate_budget_file is None
    pacer = api.process_config_and_initialize()._pacer("a-token")
    assert isinstance(pacer, PostgresRequestPacer) and pacer.key == budget_key("a-token")
    assert "pw-not-shown" not in repr(api) and "pw-not-shown" not in repr(pacer)

    own = SiroComponent.resolve_from_dict({"warehouse": {
        "backend": "ducklake", "path": str(tmp_path / "w.duckdb"), "data_path": str(tmp_path / "d"),
        "budget_dsn_env": "SIRO_BUDGET_DSN"}})
    monkeypatch.setenv("SIRO_BUDGET_DSN", "host=budget dbname=b")
    assert own.api_resource().process_config_and_initialize().rate_budget_dsn == "host=budget dbname=b"

    on_file = SiroComponent.resolve_from_dict({"warehouse": {"path": str(tmp_path / "w.duckdb")}})
    assert on_file.api_resource().rate_budget_file.endswith(RATE_BUDGET_FILE_NAME)


def test_a_lake_run_writes_no_lock_and_no_budget_file_beside_the_warehouse(catalog_dsn, tmp_path):
    database = tmp_path / "local" / "warehouse.duckdb"
    database.parent.mkdir()
    warehouse = WarehouseResource(database=str(database), backend="ducklake", ducklake_catalog=catalog_dsn,
                                  ducklake_data_path=str(tmp_path / "lake_data"))
    siro = _PacedSimulator(simulator_now=NOW.isoformat().replace("+00:00", "Z"), initial_backoff_seconds=0.0,
                           requests_per_minute=1_000_000, rate_budget_dsn=catalog_dsn)
    result = _pipeline_job().execute_in_process(
        partition_key=DAY.isoformat(), resources={"siro_api": siro, "siro_warehouse": warehouse}, raise_on_error=False
    )
    # The raw asset's write, at least (the derived tables too once the checks know a lake
    # exists without a file: `warehouse.exists()`, from the lake-multi branch).
    assert result.is_node_success("siro__recordings")

    with warehouse.read_connection() as con:
        assert con.execute("SELECT count(*) FROM siro.recordings WHERE partition_date = ?", [DAY]).fetchone()[0] > 0
    con = psycopg2.connect(catalog_dsn)
    with con, con.cursor() as cur:  # the run's requests were paced on PostgreSQL
        cur.execute(f"SELECT key FROM {BUDGET_TABLE}")
        assert cur.fetchall() == [(budget_key(SIMULATOR_TOKEN),)]
    con.close()
    assert not writer_lock_path(database).exists()
    assert _files_beside(database) == []
