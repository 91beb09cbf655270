"""The backend choice, the lake settings' secrecy, packaged-extension lookup and the bounded
conflict retry; none needs a lake, so these run with any DuckDB."""

from __future__ import annotations

import duckdb
import pytest

from siro_assets.crm.ledger import DDL as LEDGER_DDL
from pathlib import Path

import dagster as dg

import siro_assets
from siro_assets.pipeline.resources import WarehouseResource
from siro_assets.warehouse import lake
from siro_assets.warehouse.backend import open_warehouse, without_key_constraints
from siro_assets.warehouse.lake import (
    LakeConnectError,
    LakeSettings,
    LakeUnavailableError,
    extension_file,
    is_lake,
    warehouse_mode,
)
from siro_assets.warehouse.lake_retry import is_lake_conflict, retry_lake_conflicts

CONFLICT = duckdb.TransactionException(
    "TransactionContext Error: Failed to commit: Failed to commit DuckLake transaction.\n"
    'Transaction conflict - attempting to insert into table with index "2" - but another transaction has deleted from it'
)


def test_a_conflict_is_retried_with_growing_bounded_waits_until_the_transaction_commits():
    calls, waits = [], []

    def work():
        calls.append(1)
        if len(calls) < 4:
            raise CONFLICT
        return "committed"

    assert retry_lake_conflicts(work, initial_wait=0.1, max_wait=4.0, sleep=waits.append) == "committed"
    assert len(calls) == 4 and len(waits) == 3
    assert all(0 <= w <= 4.0 for w in waits)


def test_a_writer_that_keeps_losing_gives_up_after_the_bound_with_the_conflict():
    calls, waits = [], []

    def work():
        calls.append(1)
        raise CONFLICT

    with pytest.raises(duckdb.TransactionException, match="Transaction conflict"):
        retry_lake_conflicts(work, attempts=5, sleep=waits.append)
    assert len(calls) == 5 and len(waits) == 4


def test_other_errors_are_not_retried():
    calls = []

    def work():
        calls.append(1)
        raise duckdb.ConstraintException("Constraint Error: NOT NULL constraint failed: recordings.id")

    with pytest.raises(duckdb.ConstraintException):
        retry_lake_conflicts(work, sleep=lambda _: None)
    assert calls == [1]
    assert not is_lake_conflict(duckdb.IOException("Could not set lock on file"))
    assert is_lake_conflict(CONFLICT)


def test_the_backend_is_duckdb_unless_configured_and_refuses_unknown_names():
    assert warehouse_mode({}) == "duckdb"
    assert warehouse_mode({"SIRO_WAREHOUSE": " DuckLake "}) == "ducklake"
    with pytest.raises(ValueError, match="SIRO_WAREHOUSE"):
        warehouse_mode({"SIRO_WAREHOUSE": "postgres"})


def test_lake_settings_come_from_the_documented_variables_and_never_show_secrets():
    env = {
        "SIRO_DUCKLAKE_CATALOG": "host=db port=5432 dbname=lake user=siro password=hunter2-pw",
        "SIRO_DUCKLAKE_DATA_PATH": "s3://bucket/prefix",
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "s3cr3t-key",
        "AWS_SESSION_TOKEN": "sts-session-token", "AWS_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
    }
    settings = LakeSettings.from_env(env)
    assert settings.on_s3 and settings.data_path_with_slash() == "s3://bucket/prefix/"
    assert settings.aws_endpoint_url == "http://127.0.0.1:9000" and settings.aws_region == "eu-west-1"
    for secret in ("hunter2-pw", "AKIDEXAMPLE", "s3cr3t-key", "sts-session-token"):
        assert secret not in repr(settings)
        assert secret in settings.secrets()
    secret_sql = lake._s3_secret(settings)
    # Temporary keys (an assumed role) are refused by S3 without their session token.
    assert "SESSION_TOKEN 'sts-session-token'" in secret_sql
    assert "ENDPOINT '127.0.0.1:9000'" in secret_sql and "USE_SSL false" in secret_sql
    with pytest.raises(LakeConnectError, match="SIRO_DUCKLAKE_CATALOG"):
        LakeSettings.from_env({"SIRO_DUCKLAKE_DATA_PATH": "/lake"})


KEYLESS = LakeSettings(catalog="host=127.0.0.1 port=1 dbname=lake password=hunter2-pw connect_timeout=1",
                       data_path="s3://bucket/prefix/", aws_region="eu-west-1",
                       aws_endpoint_url="http://127.0.0.1:9000")


def test_with_keys_the_s3_secret_carries_them_and_no_credential_chain():
    keyed = LakeSettings(catalog="host=db", data_path="s3://bucket/p/", aws_access_key_id="AKIDEXAMPLE",
                         aws_secret_access_key="s3cr3t-key", aws_region="eu-west-1")
    assert not keyed.uses_credential_chain
    assert lake._s3_secret(keyed) == (
        "CREATE OR REPLACE SECRET siro_lake_s3 (TYPE s3, KEY_ID 'AKIDEXAMPLE', SECRET 's3cr3t-key', "
        "REGION 'eu-west-1')"
    )
    assert lake.extensions_for(keyed) == ("postgres_scanner", "ducklake", "httpfs")


def test_without_keys_the_s3_secret_uses_the_aws_credential_chain_with_the_endpoint():
    assert KEYLESS.uses_credential_chain
    assert lake._s3_secret(KEYLESS) == (
        "CREATE OR REPLACE SECRET siro_lake_s3 (TYPE s3, PROVIDER credential_chain, REFRESH auto, "
        "REGION 'eu-west-1', ENDPOINT '127.0.0.1:9000', URL_STYLE 'path', USE_SSL false)"
    )
    assert lake.extensions_for(KEYLESS)[-1] == "aws"
    r2 = LakeSettings(catalog="host=db", data_path="s3://bucket/p/", aws_region="auto")
    assert "REGION 'auto'" in lake._s3_secret(r2)
    directory = LakeSettings(catalog="host=db", data_path="/lake")
    assert not directory.uses_credential_chain and "aws" not in lake.extensions_for(directory)


def test_only_one_of_the_two_keys_is_refused_naming_the_missing_one_and_never_the_other():
    half = LakeSettings(catalog="host=db", data_path="s3://bucket/p/", aws_access_key_id="AKIDEXAMPLE")
    with pytest.raises(LakeConnectError, match="AWS_SECRET_ACCESS_KEY") as caught:
        lake._s3_secret(half)
    assert "AKIDEXAMPLE" not in str(caught.value)


def test_a_credential_chain_that_finds_nothing_says_what_to_set_and_shows_no_secret(monkeypatch, tmp_path):
    reason = lake.lake_unavailable(s3=True, credential_chain=True)
    if reason:
        pytest.skip(reason)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(name, raising=False)
    empty = tmp_path / "empty"
    empty.write_text("")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance metadata to wait for here
    with pytest.raises(LakeConnectError) as caught:
        lake.open_lake(KEYLESS)
    message = str(caught.value)
    for wanted in ("s3://bucket/prefix/", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "IAM role", "AWS_PROFILE"):
        assert wanted in message
    assert "hunter2-pw" not in message


def test_extensions_are_found_in_the_installed_wheels_for_this_duckdb_only(monkeypatch):
    monkeypatch.setattr(duckdb, "__version__", "0.0.1")
    with pytest.raises(LakeUnavailableError, match=r"0\.0\.1"):
        extension_file("ducklake")
    with pytest.raises(LakeUnavailableError, match="pip install duckdb-extension-no-such"):
        extension_file("no_such")


def test_without_the_aws_wheel_a_keyless_s3_lake_says_why_it_needs_it(monkeypatch):
    if lake.lake_unavailable(s3=True):
        pytest.skip("the lake extensions are not installed")
    monkeypatch.setattr(lake, "CREDENTIAL_CHAIN_EXTENSIONS", ("no_such_aws",))  # a wheel not installed
    with pytest.raises(LakeUnavailableError, match="AWS credential chain") as caught:
        lake.open_lake(KEYLESS)
    assert "hunter2-pw" not in str(caught.value)


def test_ducklake_ddl_drops_key_constraints_the_lake_refuses():
    for ddl in LEDGER_DDL:
        stripped = without_key_constraints(ddl)
        assert "PRIMARY KEY" not in stripped.upper() and "UNIQUE" not in stripped.upper()
        assert stripped.count("(") == stripped.count(")")
    con = duckdb.connect()
    con.execute("CREATE SCHEMA siro")
    for ddl in LEDGER_DDL:
        con.execute(without_key_constraints(ddl))


def test_a_file_connection_is_not_a_lake(tmp_path):
    con = open_warehouse(tmp_path / "w.duckdb")
    assert not is_lake(con)
    con.close()


def test_the_environment_selects_lake_mode_with_env_vars_resolved_at_run_time(monkeypatch):
    monkeypatch.setenv("SIRO_SIMULATOR", "1")
    monkeypatch.setenv("SIRO_WAREHOUSE", "ducklake")
    monkeypatch.setenv("SIRO_DUCKLAKE_CATALOG", "host=db dbname=lake password=pw-not-shown")
    monkeypatch.setenv("SIRO_DUCKLAKE_DATA_PATH", "/lake/data")
    warehouse = _shipped_warehouse()
    assert isinstance(warehouse, WarehouseResource) and warehouse.backend == "ducklake"
    assert warehouse.ducklake_data_path == "/lake/data"
    assert "pw-not-shown" not in repr(warehouse)
    monkeypatch.delenv("SIRO_WAREHOUSE")
    assert _shipped_warehouse().backend == "duckdb"


def _shipped_warehouse() -> WarehouseResource:
    """The warehouse resource the shipped `defs/siro/defs.yaml` builds from the environment."""
    defs = dg.load_from_defs_folder(path_within_project=Path(siro_assets.__file__).parent)
    return defs.resources["siro_warehouse"]
