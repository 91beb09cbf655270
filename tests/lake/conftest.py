"""Real services for the DuckLake tests: a throwaway PostgreSQL 15 cluster as the catalog,
and either a local directory or moto's S3 server on 127.0.0.1 for the data files.

Every test skips, saying why, where DuckLake cannot run: the ducklake / postgres_scanner
/ httpfs extension wheels exist only for some DuckDB versions (1.5.5 today), and the
project's main venv may run another one.
"""

from __future__ import annotations

import logging
import os
import uuid

import pytest

from siro_assets.warehouse.lake import LakeSettings, lake_unavailable
from tests.postgres_fixtures import fresh_database


def _skip_unless_lake(*, s3: bool = False) -> None:
    reason = lake_unavailable(s3=s3)
    if reason:
        pytest.skip(f"DuckLake cannot run with this DuckDB: {reason}")


@pytest.fixture(scope="session")
def catalog_server(request):
    """The session's PostgreSQL cluster; each test gets its own database in it."""
    _skip_unless_lake()  # before the cluster starts: no cluster where DuckLake cannot run
    return request.getfixturevalue("postgres_server")


@pytest.fixture
def catalog_dsn(catalog_server) -> str:
    """A libpq DSN of a fresh, empty database: a new lake's catalog."""
    return fresh_database(catalog_server, "lake_")


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on a free 127.0.0.1 port, with a bucket; yields (endpoint, bucket)."""
    _skip_unless_lake(s3=True)
    moto_server = pytest.importorskip("moto.server", reason="moto[server] is not installed")
    import boto3

    # moto serves through werkzeug, which logs every request: thousands per lake test.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test-key",
                 aws_secret_access_key="test-secret").create_bucket(Bucket="siro-lake")
    yield endpoint, "siro-lake"
    server.stop()


@pytest.fixture(params=["directory", "s3"])
def lake(request, catalog_dsn, tmp_path) -> LakeSettings:
    """A fresh lake: a PostgreSQL catalog, data files in a directory or on moto's S3."""
    if request.param == "directory":
        return LakeSettings(catalog=catalog_dsn, data_path=str(tmp_path / "lake_data"),
                            scratch_directory=str(tmp_path))
    endpoint, bucket = request.getfixturevalue("s3_server")
    return LakeSettings(
        catalog=catalog_dsn, data_path=f"s3://{bucket}/{uuid.uuid4().hex[:8]}/",
        aws_access_key_id="test-key", aws_secret_access_key="test-secret", aws_region="us-east-1",
        aws_endpoint_url=endpoint, scratch_directory=str(tmp_path),
    )


@pytest.fixture(autouse=True)
def _no_stray_aws_profile(monkeypatch):
    # The lake's S3 settings come from LakeSettings; a developer's ~/.aws must not leak in.
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
