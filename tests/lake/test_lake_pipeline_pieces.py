"""Pieces of the pipeline that assumed a DuckDB file, on a lake: the delivery-run row
(a re-tried run replaces its row, with no PRIMARY KEY to replace on) and "is there a
warehouse yet" (a lake has no file to look for)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from siro_assets.crm.ledger import RUNS_TABLE, ensure_ledger, record_run
from siro_assets.pipeline.resources import WarehouseResource
from siro_assets.warehouse.backend import open_warehouse

T0 = datetime(2026, 3, 1, 9, tzinfo=timezone.utc)
COUNTS = dict(unchanged=1, delivered=2, rejected=0, failed=0, dry_run=0, nulls_withheld=0,
              rejects_outstanding=0, api_calls=3)


@pytest.mark.parametrize("lake", ["directory"], indirect=True)
def test_a_retried_delivery_run_replaces_its_row_on_the_lake(lake):
    with open_warehouse(lake=lake) as con:
        ensure_ledger(con)
        record_run(con, "run-a", T0, T0, None, False, COUNTS, [])
        record_run(con, "run-a", T0, T0, None, False, {**COUNTS, "delivered": 5}, ["lease: held by run b"])
        rows = con.execute(f"SELECT run_id, delivered, stopped FROM {RUNS_TABLE}").fetchall()
    assert rows == [("run-a", 5, ["lease: held by run b"])]


@pytest.mark.parametrize("lake", ["directory"], indirect=True)
def test_the_resource_sees_a_lake_once_a_writer_created_it(lake, tmp_path):
    resource = WarehouseResource(database=str(tmp_path / "no-file.duckdb"), backend="ducklake",
                                 ducklake_catalog=lake.catalog, ducklake_data_path=lake.data_path)
    assert not resource.exists()  # a fresh catalog: nothing to read (a read-only ATTACH refuses)
    with resource.get_connection():
        pass
    assert resource.exists()  # though no file is there: checks and the organization guard read it
    assert "password" not in resource.describe() and lake.data_path in resource.describe()
