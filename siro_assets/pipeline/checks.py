"""Asset checks on the warehouse tables, and the whole-table audit job.

Inside a run, every check looks only at the days that run wrote (its partition or
partition-range tags), so a check costs what the run's days cost, however long the
history grows. The same checks run without partitions — in `siro_warehouse_audit_job`,
or executed alone from the UI — look at the whole table. One definition per rule keeps
the two modes from drifting apart; the `scope` metadata says which one ran.

`id_unique` and `keys_not_null` block: a raw table that fails them stops the run before
any derived table is rebuilt from it. The other checks report and let the run finish.
Every check runs in the warehouse pool and reads through a read-only connection.

Duplicates of an id *across* days (impossible unless a recording's `createdAt` changed)
are only seen by the audit: a run-scoped check cannot see other days for free.
"""

# No `from __future__ import annotations`: Dagster inspects the real annotation
# objects of context and resource parameters.
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date

import duckdb
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetKey,
    AssetSelection,
    MetadataValue,
    asset_check,
    define_asset_job,
)

from .automation.dagster_gaps import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG, PARTITION_TAG
from .derived.assets import asset_key
from .resources import WarehouseResource
from .settings import PipelineSettings
from ..transforms import DERIVED_TABLES, RECORDING_CRM, DerivedTable
from ..warehouse.schema import RECORDINGS_TABLE
from ..warehouse.tables import table_exists

SAMPLE_SIZE = 5

# Recordings that must have no derived rows.
_REMOVED = "(r.deleted IS TRUE OR r.root_data_purged_at IS NOT NULL)"

# The first and last day a check looks at; a scope of None is the whole table.
DayRange = tuple[date, date]


def run_scope(run_tags: Mapping[str, str]) -> DayRange | None:
    """The days a run wrote, from its partition or partition-range tags; None if it has neither."""
    if PARTITION_RANGE_START_TAG in run_tags and PARTITION_RANGE_END_TAG in run_tags:
        return (date.fromisoformat(run_tags[PARTITION_RANGE_START_TAG]),
                date.fromisoformat(run_tags[PARTITION_RANGE_END_TAG]))
    if PARTITION_TAG in run_tags:
        day = date.fromisoformat(run_tags[PARTITION_TAG])
        return day, day
    return None


def in_scope(alias: str, scope: DayRange | None) -> str:
    """SQL: `alias`'s rows inside `scope` (dates are parsed `date`s, so inlining them is safe)."""
    if scope is None:
        return "TRUE"
    first, last = scope
    return f"{alias}.partition_date BETWEEN DATE '{first.isoformat()}' AND DATE '{last.isoformat()}'"


def describe_scope(scope: DayRange | None) -> str:
    """How the `scope` metadata of a check result names what it looked at."""
    return "whole table" if scope is None else f"{scope[0].isoformat()}...{scope[1].isoformat()}"


@dataclass(frozen=True)
class _Rule:
    """One derived-table check: SQL selecting the offending rows as (recording_id, partition_date).
    `{recordings}` in `description` becomes the instance's raw table (`siro.recordings`)."""

    name: str
    description: str
    offenders_sql: Callable[[DerivedTable, DayRange | None], str]


def _orphans(table: DerivedTable, scope: DayRange | None) -> str:
    return f"""
    SELECT d.recording_id, d.partition_date
    FROM {table.name} AS d
    ANTI JOIN (SELECT id FROM {RECORDINGS_TABLE} AS r WHERE {in_scope("r", scope)}) AS r
        ON r.id = d.recording_id
    WHERE {in_scope("d", scope)}
    """


def _removed_rows(table: DerivedTable, scope: DayRange | None) -> str:
    return f"""
    SELECT d.recording_id, d.partition_date
    FROM {table.name} AS d
    JOIN {RECORDINGS_TABLE} AS r ON r.id = d.recording_id
    WHERE {_REMOVED} AND {in_scope("d", scope)} AND {in_scope("r", scope)}
    """


def _not_one_row(table: DerivedTable, scope: DayRange | None) -> str:
    # Live recordings with zero or several rows; rows of unknown or removed recordings
    # are the two checks above.
    return f"""
    WITH counts AS (
        SELECT recording_id, count(*) AS n FROM {table.name} AS d
        WHERE {in_scope("d", scope)}
        GROUP BY recording_id
    )
    SELECT r.id AS recording_id, r.partition_date
    FROM {RECORDINGS_TABLE} AS r
    LEFT JOIN counts AS c ON c.recording_id = r.id
    WHERE NOT {_REMOVED} AND coalesce(c.n, 0) <> 1 AND {in_scope("r", scope)}
    """


def _stats_mismatch(table: DerivedTable, scope: DayRange | None) -> str:
    # Days whose stats row disagrees with the raw table's counts, or that have several rows.
    return f"""
    WITH truth AS (
        SELECT partition_date, count(*) AS recordings,
               count(*) FILTER (WHERE NOT {_REMOVED}) AS active
        FROM {RECORDINGS_TABLE} AS r
        WHERE {in_scope("r", scope)}
        GROUP BY partition_date
    ),
    stats AS (
        SELECT partition_date, count(*) AS n, any_value(recordings) AS recordings,
               any_value(active_recordings) AS active
        FROM {table.name} AS d
        WHERE {in_scope("d", scope)}
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
    "Every recording_id in this table exists in {recordings}.",
    _orphans,
)
_NO_REMOVED = _Rule(
    "no_deleted_or_purged_rows",
    "No row belongs to a recording that {recordings} flags deleted or purged.",
    _removed_rows,
)
_ONE_ROW = _Rule(
    "one_row_per_recording",
    "Exactly one row per recording of {recordings} that is neither deleted nor purged.",
    _not_one_row,
)
_STATS_MATCH = _Rule(
    "counts_match_recordings",
    "Each day has one stats row whose recordings / active_recordings match {recordings}.",
    _stats_mismatch,
)


def _rules_for(table: DerivedTable) -> list[_Rule]:
    if not table.per_recording:
        return [_STATS_MATCH]
    rules = [_EXIST, _NO_REMOVED]
    if table.name == RECORDING_CRM.name:
        rules.append(_ONE_ROW)
    return rules


def evaluate_offenders(
    con: duckdb.DuckDBPyConnection,
    tables: tuple[str, ...],
    offenders_sql: str,
    scope: DayRange | None = None,
) -> AssetCheckResult:
    """Pass when `offenders_sql` (rows of `recording_id, partition_date`) selects nothing.

    `scope` only labels the result; the SQL must already be limited to it.
    """
    missing = [t for t in tables if not table_exists(con, t)]
    if missing:
        return AssetCheckResult(
            passed=False,
            description=f"Table(s) {', '.join(missing)} do not exist yet: materialize the assets first.",
            metadata={"missing_tables": MetadataValue.json(missing), "scope": describe_scope(scope)},
        )
    con.execute(f"CREATE OR REPLACE TEMP TABLE offenders AS {offenders_sql}")
    # Counts and samples are computed in SQL: however many rows offend, only a sample's
    # worth of ids and days comes back to Python.
    count, partition_count = con.execute(
        "SELECT count(*), count(DISTINCT partition_date) FROM offenders"
    ).fetchone()
    sample_ids = [row[0] for row in con.execute(
        "SELECT DISTINCT recording_id FROM offenders WHERE recording_id IS NOT NULL ORDER BY 1 LIMIT ?",
        [SAMPLE_SIZE],
    ).fetchall()]
    sample_partitions = [str(row[0]) for row in con.execute(
        "SELECT DISTINCT partition_date FROM offenders WHERE partition_date IS NOT NULL ORDER BY 1 LIMIT ?",
        [SAMPLE_SIZE * 2],
    ).fetchall()]
    con.execute("DROP TABLE offenders")
    return AssetCheckResult(
        passed=count == 0,
        description=None if count == 0 else f"{count} offending row(s); rebuild the listed partitions.",
        metadata={
            "scope": describe_scope(scope),
            "offending_rows": count,
            "offending_partitions": partition_count,
            "sample_recording_ids": MetadataValue.json(sample_ids),
            "sample_partitions": MetadataValue.json(sample_partitions),
        },
    )


def evaluate_rule(
    con: duckdb.DuckDBPyConnection,
    table: DerivedTable,
    rule: _Rule,
    scope: DayRange | None = None,
) -> AssetCheckResult:
    """Run one derived-table rule on an open connection (separate from Dagster for tests)."""
    return evaluate_offenders(
        con, (table.name, RECORDINGS_TABLE), rule.offenders_sql(table, scope), scope
    )


def _check_from_sql(
    settings: PipelineSettings,
    asset: AssetKey,
    name: str,
    description: str,
    tables: tuple[str, ...],
    sql_for: Callable[[DayRange | None], str],
    *,
    blocking: bool = False,
) -> AssetChecksDefinition:
    warehouse_key = settings.warehouse_resource_key
    description = description.format(recordings=settings.table_name(RECORDINGS_TABLE))
    # Qualified, so a missing table is named where it was looked for (`west.recording_crm`).
    tables = tuple(settings.table_name(table) for table in tables)

    @asset_check(
        asset=asset, name=name, description=description, blocking=blocking, pool=settings.warehouse_pool,
        required_resource_keys={warehouse_key},
    )
    def _check(context: AssetCheckExecutionContext) -> AssetCheckResult:
        scope = run_scope(context.op_execution_context.run_tags)
        warehouse: WarehouseResource = getattr(context.resources, warehouse_key)
        if not warehouse.exists():
            return AssetCheckResult(
                passed=False,
                description=f"The warehouse {warehouse.describe()} does not exist yet: "
                "materialize the assets first.",
            )
        # A read-only connection: checks must never hold the write lock the runs need.
        with warehouse.read_connection() as con:
            return evaluate_offenders(con, tables, sql_for(scope), scope)

    return _check


def _build_check(table: DerivedTable, rule: _Rule, settings: PipelineSettings) -> AssetChecksDefinition:
    return _check_from_sql(
        settings, asset_key(table, settings), rule.name, rule.description,
        (table.name, RECORDINGS_TABLE), lambda scope: rule.offenders_sql(table, scope),
    )


def derived_table_checks(table: DerivedTable, settings: PipelineSettings) -> list[AssetChecksDefinition]:
    """The checks of one derived table (see the rules above)."""
    return [_build_check(table, rule, settings) for rule in _rules_for(table)]


@dataclass(frozen=True)
class _RawRule:
    """One raw-table check; `blocking` ones stop the run before derived tables build."""

    name: str
    description: str
    offenders_sql: Callable[[DayRange | None], str]
    blocking: bool


_RAW_RULES = (
    _RawRule(
        "id_unique",
        "Every recording id appears once in {recordings} (within the run's days in a run; "
        "across all partitions in the audit). Blocking: derived tables never build from duplicates.",
        lambda scope: f"""SELECT id AS recording_id, min(partition_date) AS partition_date
            FROM {RECORDINGS_TABLE} AS r WHERE {in_scope("r", scope)}
            GROUP BY id HAVING count(*) > 1""",
        blocking=True,
    ),
    _RawRule(
        "created_at_in_partition",
        "Every created_at falls inside its partition's UTC day [00:00, 24:00).",
        lambda scope: f"""SELECT id AS recording_id, partition_date FROM {RECORDINGS_TABLE} AS r
            WHERE CAST(created_at AT TIME ZONE 'UTC' AS DATE) <> partition_date
              AND {in_scope("r", scope)}""",
        blocking=False,
    ),
    _RawRule(
        "keys_not_null",
        "No row of {recordings} lacks an id or a created_at. "
        "Blocking: derived tables never build from rows without keys.",
        lambda scope: f"""SELECT id AS recording_id, partition_date FROM {RECORDINGS_TABLE} AS r
            WHERE (id IS NULL OR created_at IS NULL) AND {in_scope("r", scope)}""",
        blocking=True,
    ),
)

def build_raw_checks(settings: PipelineSettings) -> list[AssetChecksDefinition]:
    """The raw table's checks for one instance."""
    return [
        _check_from_sql(settings, settings.key("recordings"), rule.name, rule.description, (RECORDINGS_TABLE,),
                        rule.offenders_sql, blocking=rule.blocking)
        for rule in _RAW_RULES
    ]


def blocking_check_keys(settings: PipelineSettings) -> list[AssetCheckKey]:
    """The raw table's blocking checks: the ones a run must never skip."""
    return [AssetCheckKey(settings.key("recordings"), rule.name) for rule in _RAW_RULES if rule.blocking]


def build_asset_checks(settings: PipelineSettings) -> list[AssetChecksDefinition]:
    """Every warehouse check of one instance: the raw table's, then each derived table's."""
    derived = [check for table in DERIVED_TABLES for check in derived_table_checks(table, settings)]
    return [*build_raw_checks(settings), *derived]


def build_audit_job(settings: PipelineSettings, checks: list[AssetChecksDefinition]):
    """The whole-table audit: the same checks in a run without partitions, so they look
    at every day. Run it on demand or on a slow schedule; the cost grows with history."""
    return define_asset_job(
        name=f"{settings.key_prefix}_warehouse_audit_job",
        selection=AssetSelection.checks(*checks),
        description="Every warehouse check over the whole table (runs without partitions).",
    )



__all__ = [
    "blocking_check_keys",
    "build_asset_checks",
    "build_audit_job",
    "derived_table_checks",
    "evaluate_offenders",
    "evaluate_rule",
    "run_scope",
]
