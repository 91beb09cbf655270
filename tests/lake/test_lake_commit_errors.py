"""Commit failures on a real lake (PostgreSQL 15 catalog) that are not lost races: a
catalog connection that dies at COMMIT leaves the outcome unknown, so the transaction is
raised as such, never re-run, and its message holds no DSN or password; a catalog role
that may not write fails at once."""

from __future__ import annotations

import logging
import uuid

import duckdb
import psycopg2
import pytest

from siro_assets.warehouse.backend import open_warehouse, write_transaction
from siro_assets.warehouse.lake import LakeSettings
from siro_assets.warehouse.lake_retry import LakeCommitUnknownError
from siro_assets.warehouse.tables import transaction

# A deferred trigger fires inside PostgreSQL's COMMIT: terminating its own backend there is
# a catalog connection lost while the commit is in flight.
_DIE_AT_COMMIT = """
CREATE FUNCTION die() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW; END $$;
CREATE CONSTRAINT TRIGGER die_at_commit AFTER INSERT ON ducklake_snapshot
DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION die();
"""


def _catalog(dsn: str, sql: str) -> None:
    admin = psycopg2.connect(dsn)
    try:
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(sql)
    finally:
        admin.close()


@pytest.mark.parametrize("lake", ["directory"], indirect=True)
def test_a_connection_lost_at_commit_is_raised_as_unknown_and_not_re_run(lake):
    password = next(part.split("=", 1)[1] for part in lake.catalog.split() if part.startswith("password="))
    con = open_warehouse(lake=lake)
    con.execute("CREATE TABLE siro.t (n INTEGER)")
    _catalog(lake.catalog, _DIE_AT_COMMIT)
    runs = []

    def insert() -> None:
        runs.append(1)
        with transaction(con):
            con.execute("INSERT INTO siro.t VALUES (1)")

    with pytest.raises(LakeCommitUnknownError, match="whether it committed is unknown") as caught:
        write_transaction(insert)
    assert runs == [1]
    assert password not in str(caught.value) and "server closed the connection" in str(caught.value)
    con.close()
    _catalog(lake.catalog, "DROP TRIGGER die_at_commit ON ducklake_snapshot")
    with open_warehouse(lake=lake, read_only=True) as reader:
        assert reader.execute("SELECT count(*) FROM siro.t").fetchall() == [(0,)]


@pytest.mark.parametrize("lake", ["directory"], indirect=True)
def test_a_catalog_role_without_write_rights_fails_at_once_without_its_password(lake, caplog):
    owner = open_warehouse(lake=lake)
    owner.execute("CREATE TABLE siro.t (n INTEGER)")
    owner.close()
    role = "reader_" + uuid.uuid4().hex[:8]
    _catalog(lake.catalog, f"CREATE ROLE {role} LOGIN PASSWORD 'hunter2-secret'; "
                           f"GRANT USAGE ON SCHEMA public TO {role}; GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    dsn = " ".join(f"user={role}" if p.startswith("user=") else "password=hunter2-secret" if p.startswith("password=")
                   else p for p in lake.catalog.split())
    reader = open_warehouse(lake=LakeSettings(catalog=dsn, data_path=lake.data_path))
    runs = []

    def insert() -> None:
        runs.append(1)
        with transaction(reader):
            reader.execute("INSERT INTO siro.t VALUES (1)")

    with caplog.at_level(logging.INFO, logger="siro_assets.warehouse"):
        with pytest.raises(duckdb.TransactionException, match="permission denied for table ducklake_") as caught:
            write_transaction(insert)
    assert runs == [1] and not [r for r in caplog.records if r.getMessage().startswith("Retrying")]
    assert "hunter2-secret" not in str(caught.value)
    reader.close()
