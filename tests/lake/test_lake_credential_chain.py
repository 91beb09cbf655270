"""S3 without AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY: the lake's secret takes its keys from
the standard AWS credential chain (here a shared credentials file, as AWS_PROFILE or an IAM
role would give them in production), and a write and a read of the lake go through it."""

from __future__ import annotations

import uuid

import boto3
import pytest

from siro_assets.warehouse.lake import LakeSettings, lake_unavailable, open_lake

# moto's S3 accepts any keys; these are the ones tests/lake/conftest.py gives it.
MOTO_KEY_ID, MOTO_SECRET = "test-key", "test-secret"


def test_a_lake_on_s3_without_keys_writes_and_reads_through_the_aws_credential_chain(
    s3_server, catalog_dsn, tmp_path, monkeypatch
):
    reason = lake_unavailable(credential_chain=True)
    if reason:
        pytest.skip(f"the AWS credential chain cannot run with this DuckDB: {reason}")
    endpoint, bucket = s3_server
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    credentials, config = tmp_path / "credentials", tmp_path / "config"
    credentials.write_text(f"[default]\naws_access_key_id = {MOTO_KEY_ID}\naws_secret_access_key = {MOTO_SECRET}\n")
    config.write_text("")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance metadata to wait for
    prefix = uuid.uuid4().hex[:8]
    settings = LakeSettings(catalog=catalog_dsn, data_path=f"s3://{bucket}/{prefix}/", aws_region="us-east-1",
                            aws_endpoint_url=endpoint, scratch_directory=str(tmp_path))
    assert settings.aws_access_key_id is None and settings.aws_secret_access_key is None

    writer = open_lake(settings)
    provider, secret = writer.execute(
        "SELECT provider, secret_string FROM duckdb_secrets() WHERE name = 'siro_lake_s3'"
    ).fetchall()[0]
    assert provider == "credential_chain" and f"key_id={MOTO_KEY_ID}" in secret
    assert MOTO_SECRET not in secret  # DuckDB redacts the secret itself
    writer.execute("CREATE TABLE chained AS SELECT * FROM (VALUES (1, 'a'), (2, 'b')) AS t(id, name)")
    writer.close()

    reader = open_lake(settings, read_only=True)
    assert reader.execute("SELECT id, name FROM chained ORDER BY id").fetchall() == [(1, "a"), (2, "b")]
    reader.close()
    listed = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=MOTO_KEY_ID,
                          aws_secret_access_key=MOTO_SECRET).list_objects_v2(Bucket=bucket, Prefix=prefix)
    assert any(o["Key"].endswith(".parquet") for o in listed.get("Contents", [])), "the rows are on S3"
