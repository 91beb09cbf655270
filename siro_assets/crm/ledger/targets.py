"""What each CRM field should hold next to what the CRM acknowledged: due, unchanged, outstanding.

A field's target is its newest live recording's non-blank value, or a clear where its
connection opts in (`latest_writes_sql`); it is due while the CRM has not acknowledged
that value, or while a delivery's outcome is unknown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

import duckdb

from ...transforms import latest_writes_sql
from ...transforms.writeback_plan import CRM_WRITEBACK_PLAN
from ..writes import FAILED, REJECTED
from .tables import STATE_TABLE

# Whether a plan row's connection opts in to clears: its own routing entry decides, else
# the "*" entry ($null_routed: connections with an entry; $null_clears: those, or "*",
# with write_nulls).
_CLEARS = """CASE WHEN list_contains($null_routed::VARCHAR[], p.integration_connection_id)
    THEN list_contains($null_clears::VARCHAR[], p.integration_connection_id)
    ELSE list_contains($null_clears::VARCHAR[], '*') END"""
#: Each field's target, given `clear_params`: one row per CRM field.
TARGETS_SQL = latest_writes_sql(_CLEARS)


def clear_params(write_nulls: Mapping[str, bool] | None) -> dict[str, list[str]]:
    """The query parameters of the clears rule for `write_nulls` (routing entry -> opts in)."""
    write_nulls = write_nulls or {}
    return {"null_routed": sorted(write_nulls), "null_clears": sorted(k for k, v in write_nulls.items() if v)}


#: Joins the targets `t` to their ledger rows `s`.
JOIN_STATE = f"""LEFT JOIN {STATE_TABLE} AS s
    ON s.integration_connection_id = t.integration_connection_id AND s.object_type = t.object_type
   AND s.external_id = t.external_id AND s.field_key = lower(trim(t.crm_field_name))"""
# Due: the target differs from what the CRM acknowledged, or a delivery's outcome is
# unknown (sent, never recorded) so the CRM may hold either value.
DUE = """(s.acked_value IS NULL OR json(s.acked_value)::VARCHAR <> json(t.value)::VARCHAR
        OR s.pending_value IS NOT NULL)"""

# Fields with a ready plan row in the run's days whose target the CRM already holds.
_UNCHANGED = f"""
WITH targets AS ({TARGETS_SQL}),
in_run AS (
    SELECT DISTINCT integration_connection_id, object_type, external_id,
           lower(trim(crm_field_name)) AS field_key
    FROM {CRM_WRITEBACK_PLAN.name}
    WHERE plan_status = 'ready'
      AND ($partitions IS NULL OR partition_date IN (SELECT unnest($partitions::DATE[])))
)
SELECT count(*)
FROM targets AS t
{JOIN_STATE}
JOIN in_run AS i
    ON i.integration_connection_id = t.integration_connection_id AND i.object_type = t.object_type
   AND i.external_id = t.external_id AND i.field_key = lower(trim(t.crm_field_name))
WHERE NOT {DUE}
"""


def count_unchanged(
    con: duckdb.DuckDBPyConnection, partitions: Sequence[date] | None, write_nulls: Mapping[str, bool] | None = None,
) -> int:
    """How many fields with a plan row in `partitions` (all when None) the CRM already holds as targeted."""
    params = {"partitions": sorted(set(partitions)) if partitions is not None else None, **clear_params(write_nulls)}
    return con.execute(_UNCHANGED, params).fetchall()[0][0]


# Fields whose current target the CRM rejected or failed on: what the writeback check reports.
OUTSTANDING_SQL = f"""
WITH targets AS ({TARGETS_SQL})
SELECT s.last_outcome, coalesce(s.last_error_code, 'unknown') AS error_code, count(*) AS fields
FROM {STATE_TABLE} AS s
JOIN targets AS t
    ON s.integration_connection_id = t.integration_connection_id AND s.object_type = t.object_type
   AND s.external_id = t.external_id AND s.field_key = lower(trim(t.crm_field_name))
WHERE s.last_outcome IN ('{REJECTED}', '{FAILED}')
  AND json(s.last_value)::VARCHAR = json(t.value)::VARCHAR
  AND (s.acked_value IS NULL OR json(s.acked_value)::VARCHAR <> json(t.value)::VARCHAR)
GROUP BY ALL
ORDER BY fields DESC, error_code
"""


def outstanding(
    con: duckdb.DuckDBPyConnection, write_nulls: Mapping[str, bool] | None = None,
) -> list[tuple[str, str, int]]:
    """(outcome, error code, fields) of the rejects and failures that still stand."""
    return con.execute(OUTSTANDING_SQL, clear_params(write_nulls)).fetchall()
