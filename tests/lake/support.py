"""Helpers of the DuckLake tests: simulated recordings staged as the raw asset stages them,
table snapshots to compare, and a writer that runs in a separate process."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from siro_assets.simulator import World, WorldConfig
from siro_assets.transforms import DERIVED_TABLES, rebuild_partitions
from siro_assets.warehouse.backend import open_warehouse
from siro_assets.warehouse.lake import LakeSettings
from siro_assets.warehouse.staging import RecordingsStage
from siro_assets.warehouse.swap import swap_partitions

NOW = datetime(2026, 3, 20, tzinfo=timezone.utc)
PER_DAY = 30
TABLES = ("recordings", *(t.name for t in DERIVED_TABLES))


def day_records(days: list[date], *, version: int = 1) -> list[dict]:
    """The simulated world's recordings of `days`; version 2 is each one edited an hour later."""
    world = World(WorldConfig(recordings_per_day=PER_DAY))
    records = world.recordings(
        NOW,
        created_from=datetime.combine(min(days), datetime.min.time(), timezone.utc),
        created_to=datetime.combine(max(days) + timedelta(days=1), datetime.min.time(), timezone.utc),
    )
    if version == 2:
        records = [
            {**r, "title": f"{r['title']} (edited)",
             "updatedAt": (datetime.fromisoformat(r["updatedAt"].replace("Z", "+00:00")) + timedelta(hours=1))
             .isoformat().replace("+00:00", "Z")}
            for r in records
        ]
    return records


def stage(directory: Path, records: list[dict], days: list[date]) -> RecordingsStage:
    """A sealed stage of `records` (pages of 100, as the API serves them); the caller closes it."""
    st = RecordingsStage(directory=directory, ingested_at=NOW)
    for start in range(0, len(records), 100):
        st.add_page(json.dumps({"data": records[start:start + 100], "cursor": None}))
    st.finalize(days)
    return st


def swap_and_rebuild(con, st: RecordingsStage, days: list[date]) -> None:
    """The raw asset's swap, then every derived table's rebuild of `days`."""
    swap_partitions(con, st, days)
    for table in DERIVED_TABLES:
        rebuild_partitions(con, table, days)


def snapshot(con) -> dict[str, list[tuple]]:
    """Every row of every table, ordered, as comparable Python values."""
    return {name: con.execute(f"SELECT * FROM siro.{name} ORDER BY ALL").fetchall() for name in TABLES}


def write_days_in_process(settings: LakeSettings, days: list[str], version: int, scratch: str, start, out) -> None:
    """A second machine: its own scratch directory, sharing only the catalog and the data path.

    Waits on `start` (a barrier) so that writers really overlap, then swaps and rebuilds.
    """
    try:
        parsed = [date.fromisoformat(d) for d in days]
        con = open_warehouse(lake=settings)
        st = stage(Path(scratch), day_records(parsed, version=version), parsed)
        start.wait(timeout=120)
        swap_and_rebuild(con, st, parsed)
        st.close()
        con.close()
        out.put((tuple(days), version, None))
    except BaseException as exc:  # reported to the test, which fails with it
        out.put((tuple(days), version, f"{type(exc).__name__}: {exc}"))
