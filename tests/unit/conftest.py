"""Fixtures for the pure (no Dagster) unit tests."""

from __future__ import annotations

import duckdb
import pytest


@pytest.fixture
def con():
    """An in-memory DuckDB connection in UTC, as the warehouse connections are."""
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    yield connection
    connection.close()
