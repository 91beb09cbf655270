"""What the lake's commit retry re-runs, and what it never shows.

Only a lost commit race is re-run: DuckLake's write-write conflicts and the primary-key
collisions on its own catalog tables (duckdb/ducklake#1094). DuckLake wraps every commit
error it gives up on as "Failed to commit DuckLake transaction.", so that text alone says
nothing; a connection lost while committing leaves the outcome unknown and is raised at
once. The texts below are the ones DuckDB 1.5.5 / DuckLake / postgres_scanner / PostgreSQL 15
gave when provoked for real (a delete racing an insert, a snapshot-id collision raised by
a catalog trigger, a read-only catalog role, a backend terminated at COMMIT, a wrong port).
"""

from __future__ import annotations

import logging

import duckdb
import pytest

from siro_assets.warehouse.lake import LakeSettings
from siro_assets.warehouse.lake_retry import LakeCommitUnknownError, is_lake_conflict, retry_lake_conflicts

_COMMIT = "TransactionContext Error: Failed to commit: Failed to commit DuckLake transaction.\n"
_BATCH = ('Failed to flush changes into DuckLake: Failed to execute query "INSERT INTO "public".ducklake_snapshot '
          'VALUES (4, NOW(), 2, 3, 2);INSERT INTO "public".ducklake_snapshot_changes VALUES '
          "(4, 'inserted_into_table:2', NULL, NULL, NULL);\": ")

DELETE_INSERT_CONFLICT = duckdb.TransactionException(
    _COMMIT + 'Transaction conflict - attempting to insert into table with index "2" - '
    "but another transaction has deleted from it")
CREATE_CONFLICT = duckdb.TransactionException(
    _COMMIT + 'Transaction conflict - attempting to create table "race" in schema "siro" - '
    "but this table has been created by another transaction already")
SNAPSHOT_ID_COLLISION = duckdb.TransactionException(
    _COMMIT + "Exceeded the maximum retry count of 10 set by the ducklake_max_retry_count setting.\n"
    '. Consider increasing the value with: e.g., "SET ducklake_max_retry_count = 100;"\n' + _BATCH
    + 'ERROR:  duplicate key value violates unique constraint "ducklake_snapshot_pkey"\n'
    "DETAIL:  Key (snapshot_id)=(4) already exists.\n")

PERMISSION_DENIED = duckdb.TransactionException(
    _COMMIT + _BATCH + "ERROR:  permission denied for table ducklake_snapshot\n")
CONNECTION_LOST_AT_COMMIT = duckdb.TransactionException(
    _COMMIT + 'Failed to commit: Failed to execute query "COMMIT": server closed the connection unexpectedly\n'
    "\tThis probably means the server terminated abnormally\n\tbefore or while processing the request.\n")
# A backend terminated before the commit batch: the batch fails, and so does the ROLLBACK.
ROLLBACK_FAILED = duckdb.TransactionException('TransactionContext Error: Failed to commit: '
                                              'Failed to execute query "ROLLBACK": ')
OUR_TABLES_KEY = duckdb.TransactionException(
    _COMMIT + 'ERROR:  duplicate key value violates unique constraint "crm_outbox_pkey"')

PASSWORD, AWS_SECRET = "hunter2-secret", "aws-Secret/Key+9"
DSN = f"host=db.internal port=5432 user=siro password={PASSWORD} dbname=lake"


def _refused(port: int = 1) -> duckdb.IOException:
    dsn = DSN.replace("5432", str(port))
    return duckdb.IOException(
        f'IO Error: Failed to attach DuckLake MetaData "__ducklake_metadata_warehouse" at path + "postgres:{dsn}"'
        f'Unable to connect to Postgres at "{dsn}": connection to server at "db.internal", port {port} failed: '
        "Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?\n")


@pytest.mark.parametrize("error", [DELETE_INSERT_CONFLICT, CREATE_CONFLICT, SNAPSHOT_ID_COLLISION],
                         ids=["delete-insert", "create-create", "snapshot-id-collision"])
def test_a_lost_commit_race_is_a_conflict(error):
    assert is_lake_conflict(error)


@pytest.mark.parametrize("error", [PERMISSION_DENIED, CONNECTION_LOST_AT_COMMIT, ROLLBACK_FAILED, OUR_TABLES_KEY,
                                   _refused()],
                         ids=["permission-denied", "connection-lost-at-commit", "rollback-failed",
                              "duplicate-key-of-our-table", "connection-refused"])
def test_other_commit_failures_are_not_conflicts(error):
    assert not is_lake_conflict(error)


@pytest.mark.parametrize("error", [PERMISSION_DENIED, OUR_TABLES_KEY, _refused()],
                         ids=["permission-denied", "duplicate-key-of-our-table", "connection-refused"])
def test_a_permanent_error_is_raised_at_once(error):
    calls = []

    def work():
        calls.append(1)
        raise error

    with pytest.raises(type(error)):
        retry_lake_conflicts(work, sleep=lambda _: None)
    assert calls == [1]


@pytest.mark.parametrize("error", [CONNECTION_LOST_AT_COMMIT, ROLLBACK_FAILED], ids=["at-commit", "rollback"])
def test_a_connection_lost_while_committing_is_raised_as_an_unknown_outcome_never_re_run(error):
    calls = []

    def work():
        calls.append(1)
        raise error

    with pytest.raises(LakeCommitUnknownError, match="unknown") as caught:
        retry_lake_conflicts(work, sleep=lambda _: None)
    assert calls == [1]
    assert caught.value.__cause__ is None and caught.value.__context__ is None


def test_the_retry_logs_and_raises_no_lake_secret(caplog):
    settings = LakeSettings(catalog=DSN, data_path="s3://bucket/lake/", aws_access_key_id="AKIDLAKE0001",
                            aws_secret_access_key=AWS_SECRET)
    assert not {PASSWORD, AWS_SECRET, "AKIDLAKE0001"} & set(repr(settings).split("'"))
    assert PASSWORD not in repr(settings) and AWS_SECRET not in repr(settings)
    # Texts that quote the secrets: a conflict (logged by the retry), then a connection
    # lost at COMMIT whose message quotes the DSN, as postgres_scanner's reconnect does.
    quoted = f" (catalog {DSN}, s3 secret {AWS_SECRET})"
    reconnect = f"; Unable to connect to Postgres at \"{DSN}\": s3 secret {AWS_SECRET}"
    errors = [duckdb.TransactionException(str(DELETE_INSERT_CONFLICT) + quoted),
              duckdb.TransactionException(str(CONNECTION_LOST_AT_COMMIT) + reconnect)]

    def work():
        raise errors.pop(0)

    with caplog.at_level(logging.INFO, logger="siro_assets.warehouse"):
        with pytest.raises(LakeCommitUnknownError) as caught:
            retry_lake_conflicts(work, sleep=lambda _: None)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert logged.startswith("Retrying") and "Transaction conflict" in logged  # the retry did log
    for text in (logged, str(caught.value), repr(caught.value)):
        assert PASSWORD not in text and AWS_SECRET not in text
    assert "db.internal" not in str(caught.value)  # the quoted DSN is left out whole

    def refused():
        raise _refused(5433)

    with pytest.raises(duckdb.IOException) as caught:
        retry_lake_conflicts(refused, sleep=lambda _: None)
    assert PASSWORD not in str(caught.value) and "Connection refused" in str(caught.value)
    assert "host=" not in str(caught.value)
    assert caught.value.__context__ is None


def test_a_retried_conflict_is_logged_without_the_lake_secrets(caplog):
    LakeSettings(catalog=f"postgresql://siro:{PASSWORD}@db.internal/lake", data_path="/lake",
                 aws_secret_access_key=AWS_SECRET)
    errors = [duckdb.TransactionException(f"{CREATE_CONFLICT} (postgresql://siro:{PASSWORD}@db.internal/lake, "
                                          f"{AWS_SECRET})")]

    def work():
        if errors:
            raise errors.pop()
        return "committed"

    with caplog.at_level(logging.INFO, logger="siro_assets.warehouse"):
        assert retry_lake_conflicts(work, sleep=lambda _: None) == "committed"
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Retrying")]
    assert "Transaction conflict" in line and PASSWORD not in line and AWS_SECRET not in line
