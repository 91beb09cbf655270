"""The one throwaway PostgreSQL cluster of a test session, and a fresh database in it per test.

The lake tests (a catalog per test) and the webhook inbox tests (an inbox per test) both
use it, so a session that runs both starts one cluster. `tests/deploy/postgres_cluster.py`
starts it; the fixture skips where the server binaries are missing.
"""

from __future__ import annotations

import uuid

import pytest

from tests.deploy.postgres_cluster import PostgresServer, find_postgres_bin, running_cluster

__all__ = ["fresh_database", "postgres_server"]


@pytest.fixture(scope="session")
def postgres_server():
    """One PostgreSQL cluster on 127.0.0.1 for the session."""
    bin_dir = find_postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries not found (apt-get install -y postgresql)")
    with running_cluster(bin_dir, database="postgres_admin") as server:
        yield server


def fresh_database(server: PostgresServer, prefix: str) -> str:
    """Create an empty database named `prefix` + a random suffix; its libpq DSN."""
    import psycopg2

    name = prefix + uuid.uuid4().hex[:10]
    admin = psycopg2.connect(host=server.host, port=server.port, user=server.user,
                             password=server.password, dbname=server.database)
    try:
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE {name}")
    finally:
        admin.close()
    return f"host={server.host} port={server.port} user={server.user} password={server.password} dbname={name}"
