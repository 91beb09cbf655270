"""The session's one PostgreSQL cluster hands each test a database of its own."""

from __future__ import annotations

from tests.postgres_fixtures import fresh_database
from tests.webhook_pg import webhook_pg_server  # noqa: F401 - fixture


def test_each_fresh_database_is_empty_and_apart_in_the_one_cluster(postgres_server):
    import psycopg2

    first, second = fresh_database(postgres_server, "fx_"), fresh_database(postgres_server, "fx_")
    assert first != second and f"port={postgres_server.port}" in first
    with psycopg2.connect(first) as con, con.cursor() as cur:
        cur.execute("CREATE TABLE only_here (x int)")
    with psycopg2.connect(second) as con, con.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_tables WHERE tablename = 'only_here'")
        assert cur.fetchone()[0] == 0


def test_the_lake_and_the_inbox_tests_share_the_cluster(request, postgres_server):
    assert request.getfixturevalue("webhook_pg_server") is postgres_server
