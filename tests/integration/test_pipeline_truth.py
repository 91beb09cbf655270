"""The whole pipeline against the simulator, checked against the simulator's own truth."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, timedelta

from dagster import materialize

from tests.default_instance import asset_checks, derived_assets, recordings
from siro_assets.pipeline.partitions import day_start
from siro_assets.warehouse.connection import duckdb_connection
from tests.support import NOW, partition_range_tags, simulated_siro

FIRST, LAST = date(2026, 3, 2), date(2026, 3, 3)


def _truth() -> list[dict]:
    world = simulated_siro().simulator_api().world
    return world.recordings(NOW, created_from=day_start(FIRST), created_to=day_start(LAST + timedelta(days=1)))


def _live(payload: dict) -> bool:
    return not payload["deleted"] and not payload.get("rootDataPurgedAt")


def test_every_table_matches_the_simulator_truth(warehouse):
    result = materialize(
        [recordings, *derived_assets, *asset_checks],
        resources={"siro_api": simulated_siro(simulator_page_size_cap=9), "siro_warehouse": warehouse},
        tags=partition_range_tags(str(FIRST), str(LAST)),
    )
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations())

    truth = _truth()
    live = [p for p in truth if _live(p)]
    expected_links = Counter()
    for p in live:
        crm = p.get("crm") or {}
        expected_links["user"] += len(crm.get("users") or [])
        expected_links["contact"] += len(crm.get("contacts") or [])
        for kind in ("engagement", "opportunity", "account", "lead"):
            expected_links[kind] += crm.get(kind) is not None
    expected_extraction_rows = sum(
        max(1, len(e.get("mappings") or [])) for p in live for e in p["entityExtractions"]
    )
    expected_values = {
        (p["id"], i): e.get("value") for p in live for i, e in enumerate(p["entityExtractions"])
    }
    expected_summaries = {(p["id"], i): s["content"] for p in live for i, s in enumerate(p["summary"])}

    with duckdb_connection(warehouse.database, read_only=True) as con:
        def scalar(sql):
            return con.execute(sql).fetchone()[0]

        assert scalar("SELECT count(*) FROM siro.recordings") == len(truth)
        assert scalar("SELECT count(*) FROM siro.recordings WHERE deleted") == sum(p["deleted"] for p in truth)
        assert scalar("SELECT count(*) FROM siro.recording_crm") == len(live)
        assert scalar("SELECT count(*) FROM siro.recording_crm WHERE is_linked") == sum(
            p.get("crm") is not None for p in live)
        links = dict(con.execute(
            "SELECT object_type, count(*) FROM siro.recording_crm_links GROUP BY 1").fetchall())
        assert links == {k: v for k, v in expected_links.items() if v}
        assert scalar("SELECT count(*) FROM siro.recording_entity_extractions") == expected_extraction_rows
        values = {
            (rid, pos): json.loads(value)
            for rid, pos, value in con.execute(
                "SELECT DISTINCT recording_id, position, value FROM siro.recording_entity_extractions"
            ).fetchall()
        }
        assert values == expected_values  # numbers stay numbers, arrays stay arrays, nulls stay null
        summaries = {
            (rid, pos): content
            for rid, pos, content in con.execute(
                "SELECT recording_id, position, content FROM siro.recording_summaries").fetchall()
        }
        assert summaries == expected_summaries  # unicode and very long texts intact
        stats = dict(con.execute(
            "SELECT partition_date, recordings FROM siro.recording_daily_stats").fetchall())
        assert stats == dict(Counter(date.fromisoformat(p["createdAt"][:10]) for p in truth))
