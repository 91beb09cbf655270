"""Fixtures for the pure (no Dagster) unit tests."""

from __future__ import annotations

import duckdb
import pytest

from siro_assets.warehouse.connection import DEFAULT_SCHEMA, use_schema


@pytest.fixture
def con():
    """An in-memory DuckDB connection in UTC and in schema `siro`, as the warehouse
    connections are."""
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    use_schema(connection, DEFAULT_SCHEMA, create=True)
    yield connection
    connection.close()
