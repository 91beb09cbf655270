"""The lake benchmark's real services: a throwaway PostgreSQL cluster as the catalog (the
same one tests/lake starts, `tests/deploy/postgres_cluster.py`) and moto's S3 server in its
own process on 127.0.0.1, so its CPU shows up as a separate process like a real store's.

Not a test module; `bench/lake.py` uses it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from siro_assets.warehouse.lake import LakeSettings
from tests.deploy.postgres_cluster import PostgresServer, find_postgres_bin, running_cluster

S3_KEY, S3_SECRET, S3_REGION, BUCKET = "bench-key", "bench-secret", "us-east-1", "siro-lake"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def moto_s3() -> Iterator[str]:
    """`moto_server` on a free port in its own process, with the bucket; yields the endpoint."""
    import boto3

    port = _free_port()
    server = Path(sys.executable).parent / "moto_server"
    proc = subprocess.Popen([str(server), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(endpoint, timeout=1)
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("moto_server did not start (pip install 'moto[server]')")
                time.sleep(0.2)
        boto3.client("s3", endpoint_url=endpoint, region_name=S3_REGION, aws_access_key_id=S3_KEY,
                     aws_secret_access_key=S3_SECRET).create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@dataclass
class LakeServices:
    """A running catalog server and S3 endpoint; each `new_lake` is an empty lake."""

    catalog: PostgresServer
    s3_endpoint: str
    scratch: Path

    def new_lake(self, *, on_s3: bool = True) -> LakeSettings:
        """A fresh catalog database, and a fresh prefix in the bucket (or a local directory)."""
        import psycopg2

        name = "lake_" + uuid.uuid4().hex[:10]
        s = self.catalog
        admin = psycopg2.connect(host=s.host, port=s.port, user=s.user, password=s.password, dbname=s.database)
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE {name}")
        admin.close()
        dsn = f"host={s.host} port={s.port} user={s.user} password={s.password} dbname={name}"
        if not on_s3:
            return LakeSettings(catalog=dsn, data_path=str(self.scratch / name), scratch_directory=str(self.scratch))
        return LakeSettings(catalog=dsn, data_path=f"s3://{BUCKET}/{name}/", aws_access_key_id=S3_KEY,
                            aws_secret_access_key=S3_SECRET, aws_region=S3_REGION,
                            aws_endpoint_url=self.s3_endpoint, scratch_directory=str(self.scratch))


@contextmanager
def lake_services(scratch: Path) -> Iterator[LakeServices]:
    """PostgreSQL (the newest /usr/lib/postgresql/<major>/bin) and moto's S3, for the block."""
    bin_dir = find_postgres_bin()
    if bin_dir is None:
        raise SystemExit("no PostgreSQL server binaries (apt-get install postgresql)")
    # The lake's S3 settings come from LakeSettings; a developer's ~/.aws must not leak in.
    os.environ["AWS_CONFIG_FILE"] = os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    with running_cluster(bin_dir, database="bench_admin") as catalog, moto_s3() as endpoint:
        yield LakeServices(catalog, endpoint, scratch)
