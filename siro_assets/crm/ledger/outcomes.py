"""A delivery's bookkeeping: the intent before sending, the outcomes after, orphans, the run's row.

The intent is recorded before a batch is sent and the outcomes after, so a crash in
between leaves the field due (re-sent with the same delivery key) and never marks an
unsent write as delivered. A run that ended in between leaves an orphaned intent, which
the next run logs once and re-sends.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timezone
from typing import NamedTuple

import duckdb

from ...warehouse.backend import upsert
from ..lease import LIVE_HOLDER_SQL
from ..writes import DELIVERED, FAILED, SKIPPED_UNCHANGED, FieldWrite, Outcome
from .rows import RowBatch, in_transaction
from .tables import FIELD_COLUMNS, LOG_COLUMNS, LOG_TABLE, RUN_COLUMNS, RUNS_TABLE, STATE_TABLE

_V = "VARCHAR"


class Orphan(NamedTuple):
    """An intent whose run is no longer alive: sent, its outcome never recorded."""

    integration_connection_id: str
    object_type: str
    external_id: str
    crm_field_name: str
    pending_value: str
    """The value sent, as minified JSON."""
    pending_recording_id: str
    pending_delivery_key: str
    pending_run_id: str


# An intent is an orphan when its run is neither the caller nor the lease's live holder.
_ORPHAN = f"""pending_value IS NOT NULL AND pending_run_id IS DISTINCT FROM $run
    AND pending_run_id IS DISTINCT FROM {LIVE_HOLDER_SQL}"""
_ORPHANS = f"""SELECT {", ".join(f"json({n})::VARCHAR AS {n}" if n == "pending_value" else n for n in Orphan._fields)}
FROM {STATE_TABLE} WHERE {_ORPHAN}"""


def _orphan_params(run_id: str, now: datetime | None) -> dict:
    return {"run": run_id, "now": now or datetime.now(timezone.utc)}


def orphaned_intents(con: duckdb.DuckDBPyConnection, run_id: str, now: datetime | None = None) -> list[Orphan]:
    """Deliveries a run that is no longer alive sent but never recorded an outcome for.

    A run is alive while it holds an unexpired delivery lease: its in-flight intents are
    its own, never orphans, whoever asks.
    """
    return [Orphan(*row) for row in con.execute(_ORPHANS, _orphan_params(run_id, now)).fetchall()]


_INTENTS = RowBatch({**{n: _V for n in FIELD_COLUMNS}, "crm_field_name": _V, "pending_value": "JSON",
                     "pending_recording_id": _V, "pending_delivery_key": _V, "pending_run_id": _V,
                     "pending_since": "TIMESTAMPTZ"})


def intent_row(w: FieldWrite, run_id: str, now: datetime) -> dict[str, object]:
    """The state row that notes `w` as in flight for `run_id`."""
    return dict(integration_connection_id=w.connection_id, object_type=w.object_type, external_id=w.external_id,
                field_key=w.field_key, crm_field_name=w.crm_field_name, pending_value=w.value_json,
                pending_recording_id=w.recording_id, pending_delivery_key=w.delivery_key, pending_run_id=run_id,
                pending_since=now.isoformat())


def _upsert_intents(con: duckdb.DuckDBPyConnection, params: dict) -> list[tuple]:
    # Another live run's intent (its run holds the lease) is never overwritten: that run is
    # sending the field, and its outcome is what the ledger must get.
    columns = tuple(_INTENTS.columns)
    return upsert(
        con, params=params, returning_keys=True, table=STATE_TABLE, columns=columns, key=FIELD_COLUMNS,
        source=f"SELECT {', '.join(columns)} FROM {_INTENTS.source}",
        updates=", ".join(f"{n} = excluded.{n}" for n in columns if n not in FIELD_COLUMNS),
        where=f"""{STATE_TABLE}.pending_run_id IS NULL OR {STATE_TABLE}.pending_run_id = excluded.pending_run_id
   OR {STATE_TABLE}.pending_run_id IS DISTINCT FROM $holder""",
    )


def record_intent(
    con: duckdb.DuckDBPyConnection, writes: Iterable[FieldWrite], run_id: str, now: datetime,
) -> set[tuple[str, str, str, str]]:
    """Before sending: note what is about to be sent, so a crash leaves the field due, not lost.

    Returns the identities this run may send: every write but those another live run
    (the lease holder, when that is not `run_id`) has in flight.
    """
    rows = [intent_row(w, run_id, now) for w in writes]
    if not rows:
        return set()
    claimed: list[tuple] = []

    def work() -> None:
        # DuckDB takes no subquery in DO UPDATE: read the holder first, in the same transaction.
        holder = con.execute(f"SELECT {LIVE_HOLDER_SQL}", {"now": now}).fetchall()[0][0]
        # RETURNING gives the rows inserted or updated: those the WHERE kept are not ours.
        claimed[:] = _upsert_intents(con, _INTENTS.params(rows, holder=holder))

    in_transaction(con, work)
    return set(claimed)


_LOG_TYPES = {"attempted_at": "TIMESTAMPTZ", "value": "JSON", "partition_date": "DATE", "http_status": "INTEGER"}
# One row per outcome, for the log and the field's state alike (`delivered` tells them apart).
_OUTCOMES = RowBatch({**{name: _LOG_TYPES.get(name, _V) for name, _, _, _ in LOG_COLUMNS},
                      "field_key": _V, "last_fingerprint": _V, "delivered": "BOOLEAN"})
# A log row's natural key: one attempt's outcome for one field, recorded at one moment.
_LOG_KEY = ("attempted_at", "run_id", "sink", "integration_connection_id", "object_type", "external_id",
            "crm_field_name", "outcome", "delivery_key")
# Outcomes not logged yet. A transaction that committed and is run again (its commit's
# outcome was unknown) finds its rows logged and records nothing twice; the state upsert
# runs first on the same filter, so it counts a delivery only with its new log row. The
# constant bounds on attempted_at let the scan skip the log's older row groups and files.
_UNLOGGED = f"""(SELECT * FROM {_OUTCOMES.source} AS o
WHERE NOT EXISTS (SELECT 1 FROM {LOG_TABLE} AS l
    WHERE l.attempted_at BETWEEN $first::TIMESTAMPTZ AND $last::TIMESTAMPTZ
      AND {" AND ".join(f"l.{n} IS NOT DISTINCT FROM o.{n}" for n in _LOG_KEY)}))"""
_LOG = f"""
INSERT INTO {LOG_TABLE} ({", ".join(name for name, _, _, _ in LOG_COLUMNS)})
SELECT {", ".join(name for name, _, _, _ in LOG_COLUMNS)} FROM {_UNLOGGED}
"""


def _outcome_params(rows: list[dict]) -> dict:
    return _OUTCOMES.params(rows, first=min(r["attempted_at"] for r in rows),
                            last=max(r["attempted_at"] for r in rows))


# In `excluded`, `deliveries` is 1 for a delivery and 0 otherwise, which is how the
# update below tells them apart.
_OUTCOME_COLUMNS = ('integration_connection_id', 'object_type', 'external_id', 'field_key', 'crm_field_name', 'acked_value', 'acked_recording_id', 'acked_delivery_key', 'acked_at', 'deliveries', 'last_outcome', 'last_value', 'last_recording_id', 'last_http_status', 'last_error_code', 'last_error_message', 'last_fingerprint', 'last_attempt_at')
_ACKED = ("value", "recording_id", "delivery_key", "attempted_at")


def _upsert_outcomes(con: duckdb.DuckDBPyConnection, rows: list[dict]) -> None:
    # A failure leaves the CRM's value unknown (the write may have landed): keep the intent.
    acked = ", ".join(f"CASE WHEN delivered THEN {n} END" for n in _ACKED)
    upsert(
        con, table=STATE_TABLE, params=_outcome_params(rows), columns=_OUTCOME_COLUMNS, key=FIELD_COLUMNS,
        source=f"""SELECT {", ".join(FIELD_COLUMNS)}, crm_field_name, {acked}, CASE WHEN delivered THEN 1 ELSE 0 END,
       outcome, value, recording_id, http_status, error_code, error_message, last_fingerprint, attempted_at
FROM {_UNLOGGED}""",
        updates=f"""    crm_field_name = excluded.crm_field_name,
    acked_value = CASE WHEN excluded.deliveries = 1 THEN excluded.last_value ELSE {STATE_TABLE}.acked_value END,
    acked_recording_id = CASE WHEN excluded.deliveries = 1 THEN excluded.last_recording_id ELSE {STATE_TABLE}.acked_recording_id END,
    acked_delivery_key = CASE WHEN excluded.deliveries = 1 THEN excluded.acked_delivery_key ELSE {STATE_TABLE}.acked_delivery_key END,
    acked_at = CASE WHEN excluded.deliveries = 1 THEN excluded.last_attempt_at ELSE {STATE_TABLE}.acked_at END,
    deliveries = {STATE_TABLE}.deliveries + excluded.deliveries,
    pending_value = CASE WHEN excluded.last_outcome = '{FAILED}' THEN {STATE_TABLE}.pending_value END,
    pending_recording_id = CASE WHEN excluded.last_outcome = '{FAILED}' THEN {STATE_TABLE}.pending_recording_id END,
    pending_delivery_key = CASE WHEN excluded.last_outcome = '{FAILED}' THEN {STATE_TABLE}.pending_delivery_key END,
    pending_run_id = CASE WHEN excluded.last_outcome = '{FAILED}' THEN {STATE_TABLE}.pending_run_id END,
    pending_since = CASE WHEN excluded.last_outcome = '{FAILED}' THEN {STATE_TABLE}.pending_since END,
    last_outcome = excluded.last_outcome, last_value = excluded.last_value,
    last_recording_id = excluded.last_recording_id, last_http_status = excluded.last_http_status,
    last_error_code = excluded.last_error_code, last_error_message = excluded.last_error_message,
    last_fingerprint = excluded.last_fingerprint, last_attempt_at = excluded.last_attempt_at""",
    )


def outcome_row(outcome: Outcome, sink: str, run_id: str, now: datetime) -> dict[str, object]:
    """The log row of `outcome`, with what the field's state needs of it besides."""
    w = outcome.write
    return dict(
        attempted_at=now.isoformat(), run_id=run_id, sink=sink, integration_connection_id=w.connection_id,
        object_type=w.object_type, external_id=w.external_id, field_key=w.field_key,
        crm_field_name=w.crm_field_name, value=w.value_json, recording_id=w.recording_id,
        partition_date=w.partition_date.isoformat() if w.partition_date else None,
        outcome=outcome.status, http_status=outcome.http_status, error_code=outcome.error_code,
        error_message=outcome.error_message, last_fingerprint=outcome.fingerprint,
        # An unchanged field was not delivered: it has no delivery key of its own.
        delivery_key=None if outcome.status == SKIPPED_UNCHANGED else w.delivery_key,
        delivered=outcome.status == DELIVERED,
    )


def record_outcomes(
    con: duckdb.DuckDBPyConnection, outcomes: Sequence[Outcome], sink: str, run_id: str, now: datetime,
    *, update_state: bool = True,
) -> None:
    """After sending: the log rows, and the field state (acknowledged value, reject, failure).

    Idempotent: outcomes already logged (the same call run again) are neither logged nor
    counted again.
    """
    if not outcomes:
        return
    rows = [outcome_row(o, sink, run_id, now) for o in outcomes]

    def work() -> None:
        # State first: both statements skip the outcomes already logged (see `_UNLOGGED`).
        if update_state:
            _upsert_outcomes(con, rows)
        con.execute(_LOG, _outcome_params(rows))

    in_transaction(con, work)


def log_orphans(con: duckdb.DuckDBPyConnection, orphans: Sequence[Orphan], run_id: str, now: datetime) -> None:
    """Log, once, that a run ended between sending and recording; the field stays due.

    Only intents of runs that are no longer alive are adopted (see `orphaned_intents`).
    """
    if not orphans:
        return
    rows = [
        dict(attempted_at=now.isoformat(), run_id=run_id, sink="ledger", integration_connection_id=o.integration_connection_id,
             object_type=o.object_type, external_id=o.external_id, crm_field_name=o.crm_field_name,
             value=o.pending_value, recording_id=o.pending_recording_id, outcome=FAILED, error_code="outcome_unknown",
             delivery_key=o.pending_delivery_key,
             error_message=f"run {o.pending_run_id} ended between sending and recording the outcome; the value is re-sent")
        for o in orphans
    ]

    def work() -> None:
        con.execute(_LOG, _outcome_params(rows))
        # Adopt the intent so it is logged once; it is cleared when the re-send is recorded.
        con.execute(f"UPDATE {STATE_TABLE} SET pending_run_id = $run WHERE {_ORPHAN}", _orphan_params(run_id, now))

    in_transaction(con, work)


def record_run(con: duckdb.DuckDBPyConnection, run_id: str, started: datetime, finished: datetime,
               partitions: Sequence[date] | None, dry_run: bool, counts: Mapping[str, int],
               stopped: Sequence[str]) -> None:
    """One row of `crm_delivery_runs`: the run's counts (a re-tried run replaces its row)."""
    params = {"run": run_id, "started": started, "finished": finished,
              "partitions": sorted(set(partitions)) if partitions is not None else None, "dry": dry_run,
              "unchanged": counts["unchanged"], "delivered": counts["delivered"], "rejected": counts["rejected"],
              "failed": counts["failed"], "would": counts["dry_run"], "withheld": counts["nulls_withheld"],
              "outstanding": counts["rejects_outstanding"], "calls": counts["api_calls"], "stopped": list(stopped)}
    # `upsert`, not INSERT OR REPLACE: a lake table has no PRIMARY KEY to replace on.
    in_transaction(con, lambda: upsert(
        con, RUNS_TABLE, columns=RUN_COLUMNS, key=("run_id",), params=params,
        source="""SELECT $run, $started::TIMESTAMPTZ, $finished::TIMESTAMPTZ, $partitions::DATE[], $dry, $unchanged,
            $delivered, $rejected, $failed, $would, $withheld, $outstanding, $calls, $stopped::VARCHAR[]""",
        updates=", ".join(f"{c} = excluded.{c}" for c in RUN_COLUMNS[1:]),
    ))
