"""Fixtures for the production-deployment tests."""

from __future__ import annotations

import pytest

from .postgres_cluster import find_postgres_bin, running_cluster


@pytest.fixture(scope="module")
def postgres_server():
    """A throwaway PostgreSQL cluster on 127.0.0.1; skips only where no server binaries exist."""
    bin_dir = find_postgres_bin()
    if bin_dir is None:
        pytest.skip(
            "PostgreSQL server binaries not found (no /usr/lib/postgresql/*/bin/initdb and no "
            "initdb on PATH): `apt-get install -y postgresql` to run the production-storage test"
        )
    with running_cluster(bin_dir) as server:
        yield server
