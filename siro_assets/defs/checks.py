"""Asset checks on the warehouse tables.

Derived-table checks compare each derived table with `siro.recordings` as a whole (not
only the partitions of the run), so a day whose raw rows were refreshed without its
derived rows shows up too; the failing result names the partitions to rebuild.
"""

# No `from __future__ import annotations`: Dagster inspects the real annotation
# objects of context and resource parameters.
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
from dagster import AssetCheckResult, AssetChecksDefinition, AssetKey, MetadataValue, asset_check

from .derived.assets import asset_key
from .ingest.recordings import RECORDINGS_KEY
from .resources import WarehouseResource
from ..transforms import DERIVED_TABLES, RECORDING_CRM, DerivedTable
from ..warehouse.schema import SCHEMA

RECORDINGS_TABLE = f"{SCHEMA}.recordings"
SAMPLE_SIZE = 5

# Recordings that must have no derived rows.
_REMOVED = "(r.deleted IS TRUE OR r.root_data_purged_at IS NOT NULL)"


@dataclass(frozen=True)
class _Rule:
    """One derived-table check: SQL selecting the offending rows as (recording_id, partition_date)."""

    name: str
    description: str
    offenders_sql: Callable[[DerivedTable], str]


def _orphans(table: DerivedTable) -> str:
    return f"""
    SELECT d.recording_id, d.partition_date
    FROM {table.qualified_name} AS d
    ANTI JOIN {RECORDINGS_TABLE} AS r ON r.id = d.recording_id
    """


def _removed_rows(table: DerivedTable) -> str:
    return f"""
    SELECT d.recording_id, d.partition_date
    FROM {table.qualified_name} AS d
    JOIN {RECORDINGS_TABLE} AS r ON r.id = d.recording_id
    WHERE {_REMOVED}
    """


def _not_one_row(table: DerivedTable) -> str:
    # Live recordings with zero or several rows; rows of unknown or removed recordings
    # are the two checks above.
    return f"""
    WITH counts AS (
        SELECT recording_id, count(*) AS n FROM {table.qualified_name} GROUP BY recording_id
    )
    SELECT r.id AS recording_id, r.partition_date
    FROM {RECORDINGS_TABLE} AS r
    LEFT JOIN counts AS c ON c.recording_id = r.id
    WHERE NOT {_REMOVED} AND coalesce(c.n, 0) <> 1
    """


def _stats_mismatch(table: DerivedTable) -> str:
    # Days whose stats row disagrees with the raw table's counts, or that have several rows.
    return f"""
    WITH truth AS (
        SELECT partition_date, count(*) AS recordings,
               count(*) FILTER (WHERE NOT {_REMOVED}) AS active
        FROM {RECORDINGS_TABLE} AS r
        GROUP BY partition_date
    ),
    stats AS (
        SELECT partition_date, count(*) AS n, any_value(recordings) AS recordings,
               any_value(active_recordings) AS active
        FROM {table.qualified_name}
        GROUP BY partition_date
    )
    SELECT NULL::VARCHAR AS recording_id, partition_date
    FROM stats AS s
    FULL OUTER JOIN truth AS t USING (partition_date)
    WHERE s.n IS NULL  -- a day with recordings but no stats row
       OR s.n > 1
       OR s.recordings <> coalesce(t.recordings, 0)
       OR s.active <> coalesce(t.active, 0)
    """


_EXIST = _Rule(
    "recording_ids_exist",
    "Every recording_id in this table exists in siro.recordings.",
    _orphans,
)
_NO_REMOVED = _Rule(
    "no_deleted_or_purged_rows",
    "No row belongs to a recording that siro.recordings flags deleted or purged.",
    _removed_rows,
)
_ONE_ROW = _Rule(
    "one_row_per_recording",
    "Exactly one row per recording of siro.recordings that is neither deleted nor purged.",
    _not_one_row,
)
_STATS_MATCH = _Rule(
    "counts_match_recordings",
    "Each day has one stats row whose recordings / active_recordings match siro.recordings.",
    _stats_mismatch,
)


def _rules_for(table: DerivedTable) -> list[_Rule]:
    if not table.per_recording:
        return [_STATS_MATCH]
    rules = [_EXIST, _NO_REMOVED]
    if table.name == RECORDING_CRM.name:
        rules.append(_ONE_ROW)
    return rules


def _table_exists(con: duckdb.DuckDBPyConnection, qualified_name: str) -> bool:
    schema, name = qualified_name.split(".")
    found = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?",
        [schema, name],
    ).fetchone()[0]
    return found > 0


def evaluate_offenders(
    con: duckdb.DuckDBPyConnection, tables: tuple[str, ...], offenders_sql: str
) -> AssetCheckResult:
    """Pass when `offenders_sql` (rows of `recording_id, partition_date`) selects nothing."""
    missing = [t for t in tables if not _table_exists(con, t)]
    if missing:
        return AssetCheckResult(
            passed=False,
            description=f"Table(s) {', '.join(missing)} do not exist yet: materialize the assets first.",
            metadata={"missing_tables": MetadataValue.json(missing)},
        )
    con.execute(f"CREATE OR REPLACE TEMP TABLE offenders AS {offenders_sql}")
    count, ids, partitions = con.execute(
        """
        SELECT count(*),
               list(DISTINCT recording_id ORDER BY recording_id) FILTER (WHERE recording_id IS NOT NULL),
               list(DISTINCT partition_date ORDER BY partition_date)
        FROM offenders
        """
    ).fetchone()
    con.execute("DROP TABLE offenders")
    sample_ids = (ids or [])[:SAMPLE_SIZE]
    sample_partitions = [str(day) for day in (partitions or [])[:SAMPLE_SIZE * 2]]
    return AssetCheckResult(
        passed=count == 0,
        description=None if count == 0 else f"{count} offending row(s); rebuild the listed partitions.",
        metadata={
            "offending_rows": count,
            "offending_partitions": len(partitions or []),
            "sample_recording_ids": MetadataValue.json(sample_ids),
            "sample_partitions": MetadataValue.json(sample_partitions),
        },
    )


def evaluate_rule(con: duckdb.DuckDBPyConnection, table: DerivedTable, rule: _Rule) -> AssetCheckResult:
    """Run one derived-table rule on an open connection (separate from Dagster for tests)."""
    return evaluate_offenders(con, (table.qualified_name, RECORDINGS_TABLE), rule.offenders_sql(table))


def _check_from_sql(asset: AssetKey, name: str, description: str, tables: tuple[str, ...], sql: str):
    @asset_check(asset=asset, name=name, description=description)
    def _check(warehouse: WarehouseResource) -> AssetCheckResult:
        if not Path(warehouse.database).exists():
            return AssetCheckResult(
                passed=False,
                description=f"The warehouse file {warehouse.database} does not exist yet: "
                "materialize the assets first.",
            )
        # A read-only connection: checks must never hold the write lock the runs need.
        with warehouse.read_connection() as con:
            return evaluate_offenders(con, tables, sql)

    return _check


def _build_check(table: DerivedTable, rule: _Rule) -> AssetChecksDefinition:
    return _check_from_sql(
        asset_key(table), rule.name, rule.description,
        (table.qualified_name, RECORDINGS_TABLE), rule.offenders_sql(table),
    )


def derived_table_checks(table: DerivedTable) -> list[AssetChecksDefinition]:
    """The checks of one derived table (see the rules above)."""
    return [_build_check(table, rule) for rule in _rules_for(table)]


derived_asset_checks: list[AssetChecksDefinition] = [
    check for table in DERIVED_TABLES for check in derived_table_checks(table)
]

# Raw-table rules: (name, description, offending rows as recording_id, partition_date).
_RAW_RULES = (
    (
        "id_unique",
        "Every recording id appears once in siro.recordings (exactly-once across partitions).",
        f"""SELECT id AS recording_id, min(partition_date) AS partition_date
            FROM {RECORDINGS_TABLE} GROUP BY id HAVING count(*) > 1""",
    ),
    (
        "created_at_in_partition",
        "Every created_at falls inside its partition's UTC day [00:00, 24:00).",
        f"""SELECT id AS recording_id, partition_date FROM {RECORDINGS_TABLE}
            WHERE CAST(created_at AT TIME ZONE 'UTC' AS DATE) <> partition_date""",
    ),
    (
        "keys_not_null",
        "No row of siro.recordings lacks an id or a created_at.",
        f"""SELECT id AS recording_id, partition_date FROM {RECORDINGS_TABLE}
            WHERE id IS NULL OR created_at IS NULL""",
    ),
)

raw_asset_checks: list[AssetChecksDefinition] = [
    _check_from_sql(RECORDINGS_KEY, name, description, (RECORDINGS_TABLE,), sql)
    for name, description, sql in _RAW_RULES
]

# Every check Definitions loads.
asset_checks: list[AssetChecksDefinition] = [*raw_asset_checks, *derived_asset_checks]

__all__ = [
    "asset_checks",
    "derived_asset_checks",
    "derived_table_checks",
    "evaluate_offenders",
    "evaluate_rule",
    "raw_asset_checks",
]
