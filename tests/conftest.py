"""Fixtures shared by the integration and end-to-end tests."""

from __future__ import annotations

import pytest

from siro_assets.pipeline.resources import WarehouseResource
from tests.postgres_fixtures import postgres_server  # noqa: F401 - the session's one PostgreSQL cluster


@pytest.fixture
def warehouse(tmp_path) -> WarehouseResource:
    """A warehouse on a fresh DuckDB file in the test's temp directory."""
    return WarehouseResource(database=str(tmp_path / "warehouse.duckdb"))


# Tests that must share one worker, because they share a session fixture: the UI tests'
# one code server + webserver + daemon. pytest-xdist's `--dist loadgroup` would do this, but
# under pytest 9.2 its group suffix on node ids no longer takes (pytest-xdist#1386), so the
# same grouping is done here, by node id prefix; every other test is distributed as `load`.
SHARED_WORKER_GROUPS = {"tests/e2e/test_ui_": "dagster_ui"}


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config, log):
    """`--dist load`, with the SHARED_WORKER_GROUPS each sent to one worker."""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class GroupedLoadScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            for prefix, group in SHARED_WORKER_GROUPS.items():
                if nodeid.startswith(prefix):
                    return group
            return nodeid

    return GroupedLoadScheduling(config, log)
