"""Fixtures shared by the integration and end-to-end tests."""

from __future__ import annotations

import pytest

from siro_assets.defs.resources import WarehouseResource


@pytest.fixture
def warehouse(tmp_path) -> WarehouseResource:
    """A warehouse on a fresh DuckDB file in the test's temp directory."""
    return WarehouseResource(database=str(tmp_path / "warehouse.duckdb"))
