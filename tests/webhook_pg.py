"""A throwaway PostgreSQL cluster for the webhook inbox tests: one per session, a fresh
database per test (`tests/deploy/postgres_cluster.py` starts it). Skips where the
server binaries are missing."""

from __future__ import annotations

import uuid

import pytest

from tests.deploy.postgres_cluster import find_postgres_bin, running_cluster


@pytest.fixture(scope="session")
def webhook_pg_server():
    """One PostgreSQL cluster on 127.0.0.1 for the session."""
    bin_dir = find_postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries not found (apt-get install -y postgresql)")
    with running_cluster(bin_dir, database="postgres_admin") as server:
        yield server


@pytest.fixture
def webhook_pg_dsn(webhook_pg_server) -> str:
    """A libpq DSN of a fresh, empty database."""
    import psycopg2

    s = webhook_pg_server
    name = "inbox_" + uuid.uuid4().hex[:10]
    admin = psycopg2.connect(host=s.host, port=s.port, user=s.user, password=s.password, dbname=s.database)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    admin.close()
    return f"host={s.host} port={s.port} user={s.user} password={s.password} dbname={name}"
