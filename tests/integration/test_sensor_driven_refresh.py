"""A sensor-driven run fetches only what changed, and ends where a full re-pull ends."""

from __future__ import annotations

import math
from datetime import date, timedelta

from dagster import materialize

from tests.default_instance import derived_assets, recordings
from siro_assets.pipeline.ingest.refresh import UPDATED_SINCE_TAG
from siro_assets.pipeline.partitions import day_start
from siro_assets.pipeline.resources import WarehouseResource
from siro_assets.api_client.timestamps import format_ts
from siro_assets.transforms import DERIVED_TABLES
from siro_assets.warehouse.connection import duckdb_connection
from siro_assets.warehouse.schema import RECORDINGS_COLUMN_NAMES

from tests.support import NOW, partition_range_tags, simulated_siro

FIRST, LAST = date(2026, 3, 5), date(2026, 3, 9)
LATER = NOW + timedelta(hours=20)
PAGE_CAP = 5
ASSETS = [recordings, *derived_assets]


def _run(warehouse, now, tags):
    siro = simulated_siro(now, simulator_recordings_per_day=60, simulator_page_size_cap=PAGE_CAP)
    result = materialize(ASSETS, resources={"siro_api": siro, "siro_warehouse": warehouse}, tags=tags)
    return siro, result


def _snapshot(warehouse) -> dict[str, list[tuple]]:
    columns = ", ".join(c for c in RECORDINGS_COLUMN_NAMES if c != "ingested_at")
    with duckdb_connection(warehouse.database, read_only=True) as con:
        out = {"recordings": con.execute(f"SELECT {columns} FROM siro.recordings ORDER BY id").fetchall()}
        for table in DERIVED_TABLES:
            out[table.name] = con.execute(f"SELECT * FROM {table.name} ORDER BY ALL").fetchall()
    return out


def test_a_changes_only_run_equals_a_full_re_pull_at_a_fraction_of_the_requests(tmp_path):
    days = partition_range_tags(str(FIRST), str(LAST))
    refreshed = WarehouseResource(database=str(tmp_path / "refreshed.duckdb"))
    _run(refreshed, NOW, days)

    # What changed since the first pull, in those days (what a sensor tick would see).
    siro = simulated_siro(LATER, simulator_recordings_per_day=60)
    world = siro.simulator_api().world
    now_rows = world.recordings(LATER, created_from=day_start(FIRST), created_to=day_start(LAST + timedelta(days=1)))
    changed = [r for r in now_rows if r["updatedAt"] >= format_ts(NOW)]
    assert 0 < len(changed) < len(now_rows) / 2, "the test wants some changes, not every recording"

    _, result = _run(refreshed, LATER, {**days, UPDATED_SINCE_TAG: format_ts(NOW)})
    raw = result.asset_materializations_for_node("siro__recordings")[0].metadata
    assert raw["fetch"].value.startswith("changed since")
    assert raw["rows_inserted"].value == len(changed)
    assert raw["api_requests"].value <= math.ceil(len(changed) / PAGE_CAP) + 2

    repulled = WarehouseResource(database=str(tmp_path / "repulled.duckdb"))
    _, full = _run(repulled, LATER, days)
    full_raw = full.asset_materializations_for_node("siro__recordings")[0].metadata
    assert full_raw["api_requests"].value > 2 * raw["api_requests"].value

    assert _snapshot(refreshed) == _snapshot(repulled)


def test_the_sensor_asks_for_a_changes_only_run_unless_a_day_is_requested_again():
    from datetime import datetime, timezone

    from siro_assets.changes.change_tracking import ChangeRange
    from siro_assets.changes.sensor_cursor import PendingRequest
    from siro_assets.pipeline.automation.sensors import run_requests_for

    t1 = datetime(2026, 3, 10, 9, tzinfo=timezone.utc)
    t2 = t1 + timedelta(minutes=5)
    changes = ChangeRange(FIRST, FIRST, t2, (("a", t2), ("b", t1)), (FIRST,))
    again = ChangeRange(FIRST, LAST, t2, (("a", t2),), (FIRST,),
                        retried={LAST: PendingRequest("k", t1)})
    only_changes, with_retry = run_requests_for([changes, again])
    assert only_changes.tags[UPDATED_SINCE_TAG] == format_ts(t1)  # the oldest change
    assert UPDATED_SINCE_TAG not in with_retry.tags  # a failed day is re-pulled whole


def test_a_changes_only_run_reaches_back_to_the_change_a_pending_day_owes():
    from datetime import datetime, timezone

    from siro_assets.changes.change_tracking import ChangeRange
    from siro_assets.pipeline.automation.sensors import run_requests_for

    t1 = datetime(2026, 3, 10, 10, tzinfo=timezone.utc)
    t2 = t1 + timedelta(minutes=7)
    day2 = FIRST + timedelta(days=1)
    newer = ChangeRange(FIRST, day2, t2, (("y", t2),), (FIRST, day2))
    (reaching_back,) = run_requests_for([newer], {FIRST: t1})
    assert reaching_back.tags[UPDATED_SINCE_TAG] == format_ts(t1)  # X's change, still owed
    (whole_day,) = run_requests_for([newer], {day2: None})  # owes something unknown
    assert UPDATED_SINCE_TAG not in whole_day.tags
