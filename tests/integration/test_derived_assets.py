"""Real Dagster runs of the derived assets and their checks on a DuckDB file.

Raw rows are loaded with the staging helper from hand-written payloads (plus one run
through the real raw asset against the simulator), then the derived assets are
materialized with `dagster.materialize` like a run would.
"""

from __future__ import annotations

from datetime import date

import pytest
from dagster import (
    build_asset_check_context,
    AssetKey,
    BackfillPolicy,
    DagsterInstance,
    PartitionKeyRange,
    materialize,
)

from tests.default_instance import daily_partitions, derived_asset_checks, derived_assets, recordings
from siro_assets.transforms.crm import OBJECT_TYPES
from siro_assets.transforms.extractions import VALUE_TYPES
from siro_assets.warehouse.connection import duckdb_connection

from tests.support import partition_range_tags
from tests.raw_payloads import load_raw, recording, ref

D1, D2, D3 = date(2026, 1, 5), date(2026, 1, 6), date(2026, 1, 7)
RECORDINGS = AssetKey(["siro", "recordings"])
DERIVED_KEYS = {
    AssetKey(["siro", name])
    for name in (
        "recording_crm_links",
        "recording_crm",
        "recording_summaries",
        "recording_entity_extractions",
        "recording_daily_stats",
        "crm_writeback_plan",
    )
}


def rich(rid: str, day: date, **fields) -> dict:
    """A recording with rows in every derived table."""
    defaults = {
        "crm": {
            "integrationConnectionId": "ic",
            "users": [ref(f"su-{rid}", f"U-{rid}")],
            "engagement": ref(f"se-{rid}", f"E-{rid}"),
            "contacts": [ref("sc1", "C1"), ref("sc2", "C2")],
        },
        "summary": [{"id": "s1", "name": "Overview", "content": "Résumé 😀"}],
        "entityExtractions": [
            {"name": "roof", "value": "Metal",
             "mappings": [{"crmModelName": "Opportunity", "crmFieldName": "Roof__c"}]},
            {"name": "squares", "value": 42, "mappings": None},
            {"name": "colors", "value": ["red", None, 3], "mappings": []},
        ],
    }
    return recording(rid, day, **{**defaults, **fields})


def seed(warehouse, days_records: dict[date, list[dict]]) -> None:
    """Load raw rows per day; the connection is closed before Dagster opens the file."""
    with duckdb_connection(warehouse.database) as con:
        for day, records in days_records.items():
            load_raw(con, records, [day])


def query(warehouse, sql: str):
    with duckdb_connection(warehouse.database, read_only=True) as con:
        return con.execute(sql).fetchall()


def run(
    warehouse,
    *,
    key: str | None = None,
    key_range: PartitionKeyRange | None = None,
    instance=None,
    checks: bool = True,
):
    """Materialize every derived asset (and its checks) for a partition or a range, in one run."""
    kwargs: dict = {}
    if key:
        kwargs["partition_key"] = key
    if key_range:
        kwargs["tags"] = partition_range_tags(key_range.start, key_range.end)
    return materialize(
        [*derived_assets, *(derived_asset_checks if checks else [])],
        resources={"siro_warehouse": warehouse},
        instance=instance,
        **kwargs,
    )


def evaluate_checks(warehouse) -> dict[tuple[str, str], bool]:
    """Every derived check invoked directly (no run), as {(table, check name): passed}."""
    return {
        (c.check_key.asset_key.path[-1], c.check_key.name): c(build_asset_check_context(resources={"siro_warehouse": warehouse})).passed
        for c in derived_asset_checks
    }


def check_outcomes(result) -> dict[tuple[str, str], bool]:
    return {
        (e.asset_key.path[-1], e.check_name): e.passed for e in result.get_asset_check_evaluations()
    }


def test_asset_definitions_share_the_pipeline_settings():
    assert {a.key for a in derived_assets} == DERIVED_KEYS
    for assets_def in derived_assets:
        key = assets_def.key
        assert assets_def.partitions_def == daily_partitions
        assert assets_def.backfill_policy == BackfillPolicy.single_run()
        assert set(assets_def.asset_deps[key]) == {RECORDINGS}
        spec = assets_def.specs_by_key[key]
        assert spec.group_name in {"siro_crm", "siro_conversations", "siro_writebacks"}
        assert "dagster/kind/duckdb" in spec.tags
        assert "One row per" in spec.description
        assert spec.metadata["dagster/column_schema"].columns[0].name == "partition_date"
        assert assets_def.op.pool == "siro_duckdb"
    checked = {c.asset_key for d in derived_asset_checks for c in d.check_keys}
    assert checked == DERIVED_KEYS


def test_materialize_one_partition(warehouse):
    seed(warehouse, {
        D1: [rich("a", D1), recording("unlinked", D1), rich("gone", D1, deleted=True)],
        D2: [rich("b", D2)],
    })
    result = run(warehouse, key="2026-01-05")
    assert result.success
    outcomes = check_outcomes(result)
    # In a run, checks look at the run's day only: D1 is whole, so every check passes
    # although D2's raw rows have no derived rows yet ...
    assert all(outcomes.values()), outcomes
    assert {e.metadata["scope"].value for e in result.get_asset_check_evaluations()} == {"2026-01-05...2026-01-05"}
    # ... which the whole-table audit (the checks without partitions) reports, naming
    # the partition to build.
    audit = {(c.check_key.asset_key.path[-1], c.check_key.name): c(build_asset_check_context(resources={"siro_warehouse": warehouse}))
             for c in derived_asset_checks}
    assert not audit.pop(("recording_daily_stats", "counts_match_recordings")).passed
    unbuilt = audit.pop(("recording_crm", "one_row_per_recording"))
    assert not unbuilt.passed and unbuilt.metadata["scope"].value == "whole table"
    assert unbuilt.metadata["sample_partitions"].value == ["2026-01-06"]
    assert unbuilt.metadata["sample_recording_ids"].value == ["b"]
    assert all(r.passed for r in audit.values())

    assert query(warehouse, "SELECT recording_id, is_linked FROM siro.recording_crm ORDER BY 1") == [
        ("a", True), ("unlinked", False)
    ]
    assert query(
        warehouse,
        "SELECT object_type, count(*) FROM siro.recording_crm_links GROUP BY 1 ORDER BY 1",
    ) == [("contact", 2), ("engagement", 1), ("user", 1)]
    assert query(warehouse, "SELECT content FROM siro.recording_summaries") == [("Résumé 😀",)]
    assert query(
        warehouse,
        "SELECT name, value_type, value_text FROM siro.recording_entity_extractions ORDER BY position",
    ) == [("roof", "string", "Metal"), ("squares", "number", "42"), ("colors", "array", "red, 3")]
    # D2 was not asked for.
    assert query(warehouse, "SELECT DISTINCT partition_date FROM siro.recording_crm") == [(D1,)]

    mats = {m.asset_key: m for m in result.get_asset_materialization_events()}
    crm_meta = mats[AssetKey(["siro", "recording_crm"])].materialization.metadata
    assert crm_meta["dagster/row_count"].value == 2
    assert [c.name for c in crm_meta["dagster/column_schema"].schema.columns][:3] == [
        "partition_date", "recording_id", "created_at"
    ]
    stats = query(
        warehouse,
        "SELECT recordings, deleted, active_recordings, linked_share FROM siro.recording_daily_stats",
    )
    assert stats == [(3, 1, 2, 0.5)]

    assert all(check_outcomes(run(warehouse, key="2026-01-06")).values())


def test_partition_range_in_one_run(warehouse):
    seed(warehouse, {D1: [rich("a", D1)], D2: [rich("b", D2)], D3: [rich("c", D3), rich("d", D3)]})
    instance = DagsterInstance.ephemeral()
    result = run(warehouse, key_range=PartitionKeyRange("2026-01-05", "2026-01-07"), instance=instance)
    assert result.success
    assert all(check_outcomes(result).values())
    assert len(instance.get_runs()) == 1
    assert query(
        warehouse, "SELECT partition_date, count(*) FROM siro.recording_crm GROUP BY 1 ORDER BY 1"
    ) == [(D1, 1), (D2, 1), (D3, 2)]
    assert query(
        warehouse, "SELECT partition_date, recordings FROM siro.recording_daily_stats ORDER BY 1"
    ) == [(D1, 1), (D2, 1), (D3, 2)]
    for key in DERIVED_KEYS:
        status = instance.get_status_by_partition(key, ["2026-01-05", "2026-01-06", "2026-01-07"], daily_partitions)
        assert all(s.value == "MATERIALIZED" for s in status.values()), (key, status)


@pytest.mark.parametrize(
    "change",
    [{"deleted": True, "deletedAt": "2026-01-09T09:00:00.000Z"}, {"rootDataPurgedAt": "2026-01-09T09:00:00.000Z"}],
    ids=["deleted", "purged"],
)
def test_deletion_or_purge_after_first_materialization(warehouse, change):
    seed(warehouse, {D1: [rich("a", D1), rich("b", D1, hour=11)], D2: [rich("c", D2)]})
    assert run(warehouse, key_range=PartitionKeyRange("2026-01-05", "2026-01-06"), checks=False).success

    # The raw asset re-pulls D1 and now sees "a" deleted (or purged) ...
    seed(warehouse, {D1: [rich("a", D1, updatedAt="2026-01-09T09:00:00.000Z", **change), rich("b", D1, hour=11)]})
    # ... so its derived rows are stale, and the checks say so until D1 is rebuilt ...
    stale = evaluate_checks(warehouse)
    assert stale[("recording_summaries", "no_deleted_or_purged_rows")] is False
    assert stale[("recording_crm", "one_row_per_recording")] is True  # "a" still has its one row
    assert stale[("recording_daily_stats", "counts_match_recordings")] is False
    # ... and the next materialization of D1 removes them.
    fresh = run(warehouse, key="2026-01-05")
    assert all(check_outcomes(fresh).values()), check_outcomes(fresh)
    for table in ("recording_crm_links", "recording_crm", "recording_summaries", "recording_entity_extractions"):
        ids = [r[0] for r in query(warehouse, f"SELECT DISTINCT recording_id FROM siro.{table} ORDER BY 1")]
        assert ids == ["b", "c"], table
    assert query(warehouse, "SELECT id FROM siro.recordings WHERE id = 'a'") == [("a",)]


def test_checks_fail_on_planted_bad_rows(warehouse):
    seed(warehouse, {D1: [rich("a", D1), rich("b", D1, hour=11), rich("gone", D1, deleted=True)]})
    assert run(warehouse, key="2026-01-05", checks=False).success
    assert all(evaluate_checks(warehouse).values())

    with duckdb_connection(warehouse.database) as con:
        # An orphan, a row of a deleted recording, a missing and a duplicated crm row,
        # and a stats row that disagrees with the raw table.
        con.execute("INSERT INTO siro.recording_summaries VALUES ('2026-01-05', 'ghost', 0, 's', 'n', 'c')")
        con.execute(
            "INSERT INTO siro.recording_entity_extractions "
            "VALUES ('2026-01-05', 'gone', 0, 'x', '1', '1', 'number', NULL, NULL, NULL)"
        )
        con.execute("DELETE FROM siro.recording_crm WHERE recording_id = 'a'")
        con.execute("INSERT INTO siro.recording_crm SELECT * FROM siro.recording_crm WHERE recording_id = 'b'")
        con.execute("UPDATE siro.recording_daily_stats SET recordings = 99")

    by_name = {c.check_key.name + "@" + c.check_key.asset_key.path[-1]: c for c in derived_asset_checks}
    def evaluate(name, table):
        return by_name[f"{name}@{table}"](build_asset_check_context(resources={"siro_warehouse": warehouse}))

    orphan = evaluate("recording_ids_exist", "recording_summaries")
    assert not orphan.passed
    assert orphan.metadata["offending_rows"].value == 1
    assert orphan.metadata["sample_recording_ids"].value == ["ghost"]
    assert orphan.metadata["sample_partitions"].value == ["2026-01-05"]

    removed = evaluate("no_deleted_or_purged_rows", "recording_entity_extractions")
    assert not removed.passed and removed.metadata["sample_recording_ids"].value == ["gone"]

    one_row = evaluate("one_row_per_recording", "recording_crm")
    assert not one_row.passed and one_row.metadata["sample_recording_ids"].value == ["a", "b"]

    assert not evaluate("counts_match_recordings", "recording_daily_stats").passed
    assert evaluate("recording_ids_exist", "recording_crm_links").passed

    # A run of D2 (leaving the planted rows of D1 alone) looks at D2 only: it passes.
    result = run(warehouse, key="2026-01-06")
    assert result.success
    assert check_outcomes(result)[("recording_summaries", "recording_ids_exist")] is True


def test_checks_report_missing_tables(warehouse):
    seed(warehouse, {D1: [rich("a", D1)]})
    check = next(c for c in derived_asset_checks if c.check_key.asset_key.path[-1] == "recording_crm")
    result = check(build_asset_check_context(resources={"siro_warehouse": warehouse}))
    assert not result.passed
    assert "siro.recording_crm" in result.description


def test_pipeline_from_the_real_raw_asset(warehouse):
    """`siro/recordings*` for a day against the simulator: raw, derived and checks in one run."""
    from tests.support import simulated_siro

    result = materialize(
        [recordings, *derived_assets, *derived_asset_checks],
        resources={"siro_api": simulated_siro(), "siro_warehouse": warehouse},
        partition_key="2026-03-02",
    )
    assert result.success
    assert all(check_outcomes(result).values()), check_outcomes(result)
    live, crm_rows = query(
        warehouse,
        """
        SELECT (SELECT count(*) FROM siro.recordings
                WHERE deleted IS NOT TRUE AND root_data_purged_at IS NULL),
               (SELECT count(*) FROM siro.recording_crm)
        """,
    )[0]
    assert live == crm_rows > 0
    types = {r[0] for r in query(warehouse, "SELECT DISTINCT value_type FROM siro.recording_entity_extractions")}
    assert types and types <= set(VALUE_TYPES)
    kinds = {r[0] for r in query(warehouse, "SELECT DISTINCT object_type FROM siro.recording_crm_links")}
    assert kinds and kinds <= set(OBJECT_TYPES)


def test_daily_stats_metadata_carries_the_numbers_to_plot(warehouse):
    seed(warehouse, {D1: [rich("a", D1), recording("unlinked", D1), rich("gone", D1, deleted=True)]})
    result = run(warehouse, key="2026-01-05")
    stats = next(
        m.materialization.metadata for m in result.get_asset_materialization_events()
        if m.asset_key == AssetKey(["siro", "recording_daily_stats"])
    )
    assert stats["recordings"].value == 3 and stats["deleted"].value == 1
    assert stats["linked_share"].value == 0.5
