"""PostgreSQL for the webhook inbox tests: a fresh database per test in the session's one
cluster (`postgres_server`, tests/postgres_fixtures.py via tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.postgres_fixtures import fresh_database


@pytest.fixture(scope="session")
def webhook_pg_server(postgres_server):
    """The session's cluster, under the name the inbox tests have imported."""
    return postgres_server


@pytest.fixture
def webhook_pg_dsn(postgres_server) -> str:
    """A libpq DSN of a fresh, empty database."""
    return fresh_database(postgres_server, "inbox_")
