"""The due fields of a delivery in progress: staged in `crm_delivery_queue`, read back by page.

The queue is read back in pages of whole CRM records, so memory stays bounded however
much is due; the staging itself stays in DuckDB (which spills to disk).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import NamedTuple

import duckdb

from ..writes import REJECTED, FieldWrite
from .rows import in_transaction
from .tables import QUEUE_TABLE
from .targets import DUE, JOIN_STATE, TARGETS_SQL, clear_params


class QueuedField(NamedTuple):
    """One row of the queue, by its column names (the run's bookkeeping columns aside)."""

    integration_connection_id: str
    object_type: str
    external_id: str
    field_key: str
    crm_field_name: str
    crm_model_name: str
    value: str
    """The target as minified JSON."""
    recording_id: str
    idempotency_key: str
    """The plan's key of this recording's write of this value."""
    deliveries: int
    partition_date: date | None
    last_outcome: str | None
    last_value: str | None
    last_fingerprint: str | None


@dataclass(frozen=True)
class Candidate:
    """A due field's target next to its ledger state."""

    write: FieldWrite
    last_outcome: str | None
    last_value: str | None
    last_fingerprint: str | None

    @classmethod
    def from_row(cls, row: QueuedField) -> "Candidate":
        """The candidate one queue row describes."""
        write = FieldWrite(
            connection_id=row.integration_connection_id, object_type=row.object_type, external_id=row.external_id,
            field_key=row.field_key, crm_field_name=row.crm_field_name, crm_model_name=row.crm_model_name,
            value=json.loads(row.value), recording_id=row.recording_id, plan_key=row.idempotency_key,
            deliveries=row.deliveries, partition_date=row.partition_date,
        )
        return cls(write, row.last_outcome, row.last_value, row.last_fingerprint)

    def rejected_before(self, fingerprint: str | None) -> bool:
        """The CRM (or the schema) rejected this same value under the same configuration."""
        return (
            self.last_outcome == REJECTED
            and self.last_value == self.write.value_json
            and self.last_fingerprint == fingerprint
        )


_QUEUED = ", ".join(QueuedField._fields)

# Each due field's target next to its ledger row, numbered by CRM record so a page of
# records never splits one record's fields.
_STAGE = f"""
INSERT INTO {QUEUE_TABLE} (run_id, staged_at, record_no, {_QUEUED})
WITH targets AS ({TARGETS_SQL})
SELECT $run, $now::TIMESTAMPTZ, dense_rank() OVER (ORDER BY t.integration_connection_id, t.object_type, t.external_id) AS record_no,
       t.integration_connection_id, t.object_type, t.external_id,
       lower(trim(t.crm_field_name)) AS field_key, trim(t.crm_field_name) AS crm_field_name, t.crm_model_name,
       json(t.value)::VARCHAR AS value, t.recording_id, t.idempotency_key,
       coalesce(s.deliveries, 0) AS deliveries, t.partition_date,
       s.last_outcome, json(s.last_value)::VARCHAR AS last_value, s.last_fingerprint
FROM targets AS t
{JOIN_STATE}
WHERE {DUE}
"""

_PAGE = f"""
SELECT {_QUEUED}
FROM {QUEUE_TABLE} WHERE run_id = ? AND record_no > ? AND record_no <= ?
ORDER BY record_no, field_key
"""


def stage_due(
    con: duckdb.DuckDBPyConnection, run_id: str, now: datetime, write_nulls: Mapping[str, bool] | None = None,
) -> int:
    """Queue every due field (whatever its day) for `run_id` in `crm_delivery_queue`;
    returns how many CRM records they belong to.

    `write_nulls` maps routing entries (connection ids, `"*"`) to their opt-in to clears;
    without it no connection clears. The first delivery over a year of history loads
    nothing into Python here. Rows a crashed run left behind go a day later.
    """
    def work() -> None:
        con.execute(f"DELETE FROM {QUEUE_TABLE} WHERE run_id = $run OR staged_at < $now::TIMESTAMPTZ - INTERVAL 1 DAY",
                    {"run": run_id, "now": now})
        con.execute(_STAGE, {"run": run_id, "now": now, **clear_params(write_nulls)})

    in_transaction(con, work)
    return con.execute(f"SELECT coalesce(max(record_no), 0) FROM {QUEUE_TABLE} WHERE run_id = ?",
                       [run_id]).fetchall()[0][0]


def due_page(con: duckdb.DuckDBPyConnection, run_id: str, after: int, records: int) -> list[Candidate]:
    """The queued fields of `run_id`'s records `after + 1 .. after + records`, a record's fields together."""
    rows = con.execute(_PAGE, [run_id, after, after + records]).fetchall()
    return [Candidate.from_row(QueuedField(*row)) for row in rows]


def drop_due(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """Empty the run's queue once its delivery is over (other runs' rows stay).

    Called in the delivery's `finally`: like every ledger write it re-runs after a lake
    commit conflict, so a lost race neither hides the delivery's own error nor fails a
    delivery that succeeded."""
    in_transaction(con, lambda: con.execute(f"DELETE FROM {QUEUE_TABLE} WHERE run_id = ?", [run_id]))
