"""The writeback ledger in DuckDB: field state, attempt log, outbox.

`siro.crm_writeback_state` has one row per CRM field with the value the CRM last
acknowledged (and its source recording), the intent of a delivery in flight, and the
last attempt's outcome. `siro.crm_writeback_log` has one row per attempt;
`siro.crm_delivery_runs` one row per delivery, with the fields it found unchanged as a
count. `siro.crm_delivery_queue` holds the due fields of the delivery in progress, read
back in pages of whole records so memory stays bounded however much is due. Every function
here is one short transaction on a connection the caller opened for just that: delivery
never holds the warehouse while it waits on a CRM.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timezone

import duckdb

from ..transforms import latest_writes_sql
from ..transforms.writeback_plan import CRM_WRITEBACK_PLAN
from ..warehouse.backend import create_keyed_table, upsert, write_transaction
from ..warehouse.tables import transaction
from ..warehouse.schema import SCHEMA, ensure_schema
from .lease import LEASE_DDL, LIVE_HOLDER_SQL
from .writes import DELIVERED, FAILED, REJECTED, SKIPPED_UNCHANGED, FieldWrite, Outcome

STATE_TABLE = f"{SCHEMA}.crm_writeback_state"
LOG_TABLE = f"{SCHEMA}.crm_writeback_log"
OUTBOX_TABLE = f"{SCHEMA}.crm_outbox"
RUNS_TABLE = f"{SCHEMA}.crm_delivery_runs"
QUEUE_TABLE = f"{SCHEMA}.crm_delivery_queue"

_FIELD = "integration_connection_id, object_type, external_id, field_key"

# `siro.crm_writeback_log`: (name, type, description, the plan columns it comes from).
LOG_COLUMNS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("attempted_at", "TIMESTAMPTZ NOT NULL", "When the attempt's outcome was recorded (UTC).", ()),
    ("run_id", "VARCHAR", "Dagster run (or caller) that made the attempt.", ()),
    ("sink", "VARCHAR NOT NULL", "outbox, salesforce, hubspot, http; ledger for outcome_unknown rows "
     "(and the skipped_unchanged rows of older versions).", ()),
    ("integration_connection_id", "VARCHAR NOT NULL", "Siro integration connection the write was routed by.",
     ("integration_connection_id",)),
    ("object_type", "VARCHAR NOT NULL", "crm block object written (opportunity, account, lead, engagement, "
     "contact, user).", ("object_type",)),
    ("external_id", "VARCHAR NOT NULL", "The CRM record's id.", ("external_id",)),
    ("crm_field_name", "VARCHAR NOT NULL", "CRM field, as mapped.", ("crm_field_name",)),
    ("value", "JSON", "The value as extracted (JSON); the CRM got it in its own wire format.", ("value",)),
    ("recording_id", "VARCHAR", "The recording the value came from (the field's newest live recording).",
     ("recording_id",)),
    ("partition_date", "DATE", "UTC day of that recording's createdAt.", ("partition_date",)),
    ("outcome", "VARCHAR NOT NULL", "delivered, rejected, failed or dry_run (skipped_unchanged only in rows "
     "of older versions: unchanged fields are now a count in siro.crm_delivery_runs).", ()),
    ("http_status", "INTEGER", "The CRM's HTTP status for the request, when there was one.", ()),
    ("error_code", "VARCHAR", "Reject or failure code (the CRM's, or unknown_field, not_updateable, "
     "invalid_value, unsupported_object, no_route, outcome_unknown).", ()),
    ("error_message", "VARCHAR", "The CRM's (or our) message for the code.", ()),
    ("delivery_key", "VARCHAR", "Key of the delivery: stable across its retries, new for the next one; "
     "the http sink's Idempotency-Key is derived from it.", ("idempotency_key",)),
)

DDL = (
    f"""CREATE TABLE IF NOT EXISTS {STATE_TABLE} (
    integration_connection_id VARCHAR NOT NULL,
    object_type VARCHAR NOT NULL,
    external_id VARCHAR NOT NULL,
    field_key VARCHAR NOT NULL,             -- lower(trim(crm_field_name)): one CRM field
    crm_field_name VARCHAR,
    acked_value JSON,                        -- the value the CRM last acknowledged
    acked_recording_id VARCHAR,
    acked_delivery_key VARCHAR,
    acked_at TIMESTAMPTZ,
    deliveries INTEGER NOT NULL DEFAULT 0,   -- acknowledged deliveries so far
    pending_value JSON,                      -- intent: a delivery sent, outcome not yet recorded
    pending_recording_id VARCHAR,
    pending_delivery_key VARCHAR,
    pending_run_id VARCHAR,
    pending_since TIMESTAMPTZ,
    last_outcome VARCHAR,
    last_value JSON,
    last_recording_id VARCHAR,
    last_http_status INTEGER,
    last_error_code VARCHAR,
    last_error_message VARCHAR,
    last_fingerprint VARCHAR,
    last_attempt_at TIMESTAMPTZ,
    PRIMARY KEY ({_FIELD})
)""",
    f"CREATE TABLE IF NOT EXISTS {LOG_TABLE} (\n    "
    + ",\n    ".join(f"{name} {sql_type}" for name, sql_type, _, _ in LOG_COLUMNS)
    + "\n)",
    f"""CREATE TABLE IF NOT EXISTS {OUTBOX_TABLE} (
    delivery_key VARCHAR PRIMARY KEY,        -- a re-sent delivery is not queued twice
    queued_at TIMESTAMPTZ NOT NULL,
    run_id VARCHAR,
    integration_connection_id VARCHAR NOT NULL,
    object_type VARCHAR NOT NULL,
    crm_model_name VARCHAR,
    external_id VARCHAR NOT NULL,
    crm_field_name VARCHAR NOT NULL,
    value JSON,
    recording_id VARCHAR
)""",
    f"""CREATE TABLE IF NOT EXISTS {RUNS_TABLE} (
    run_id VARCHAR PRIMARY KEY,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ NOT NULL,
    partitions DATE[],                       -- the run's days (NULL: all)
    dry_run BOOLEAN NOT NULL,
    unchanged BIGINT NOT NULL,               -- fields of the run's days already acknowledged as they are
    delivered BIGINT NOT NULL,
    rejected BIGINT NOT NULL,
    failed BIGINT NOT NULL,
    would_send BIGINT NOT NULL,              -- dry runs: what would have been sent
    nulls_withheld BIGINT NOT NULL,
    rejects_outstanding BIGINT NOT NULL,
    api_calls BIGINT NOT NULL,
    stopped VARCHAR[]                        -- why the run stopped early (a sink, the lease)
)""",
    # Scratch: the due fields of each delivery in progress, keyed by its run, read back a
    # page of records at a time. Keyed so a run that lost the lease and ends late drops
    # only its own rows, never the queue of the run that took the lease over.
    f"""CREATE TABLE IF NOT EXISTS {QUEUE_TABLE} (
    run_id VARCHAR NOT NULL,
    staged_at TIMESTAMPTZ NOT NULL,
    record_no BIGINT NOT NULL,               -- dense rank of (connection, object, record): a page never splits a record
    integration_connection_id VARCHAR, object_type VARCHAR, external_id VARCHAR, field_key VARCHAR,
    crm_field_name VARCHAR, crm_model_name VARCHAR, value VARCHAR, recording_id VARCHAR, idempotency_key VARCHAR,
    deliveries INTEGER, partition_date DATE, last_outcome VARCHAR, last_value VARCHAR, last_fingerprint VARCHAR
)""",
    LEASE_DDL,
)


def ensure_ledger(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ledger tables (and the plan table, so a fresh warehouse reads as empty)."""
    ensure_schema(con)
    con.execute(CRM_WRITEBACK_PLAN.ddl())
    for statement in DDL:
        create_keyed_table(con, statement)


def _transaction(con: duckdb.DuckDBPyConnection, work) -> None:
    def once() -> None:
        with transaction(con):
            work()

    # On a lake a concurrent writer may win the commit: the whole transaction re-runs.
    write_transaction(once)


# Whether a plan row's connection opts in to clears: its own routing entry decides, else
# the "*" entry ($null_routed: connections with an entry; $null_clears: those, or "*",
# with write_nulls).
_CLEARS = """CASE WHEN list_contains($null_routed::VARCHAR[], p.integration_connection_id)
    THEN list_contains($null_clears::VARCHAR[], p.integration_connection_id)
    ELSE list_contains($null_clears::VARCHAR[], '*') END"""
_TARGETS = latest_writes_sql(_CLEARS)


def clear_params(write_nulls: Mapping[str, bool] | None) -> dict[str, list[str]]:
    """The query parameters of `_CLEARS` for `write_nulls` (routing entry -> opts in)."""
    write_nulls = write_nulls or {}
    return {"null_routed": sorted(write_nulls), "null_clears": sorted(k for k, v in write_nulls.items() if v)}


_JOIN_STATE = f"""LEFT JOIN {STATE_TABLE} AS s
    ON s.integration_connection_id = t.integration_connection_id AND s.object_type = t.object_type
   AND s.external_id = t.external_id AND s.field_key = lower(trim(t.crm_field_name))"""
# Due: the target differs from what the CRM acknowledged, or a delivery's outcome is
# unknown (sent, never recorded) so the CRM may hold either value.
_DUE = """(s.acked_value IS NULL OR json(s.acked_value)::VARCHAR <> json(t.value)::VARCHAR
        OR s.pending_value IS NOT NULL)"""

# Each due field's target (the newest live recording's non-blank value, or a clear where
# the connection opts in) next to its ledger row, numbered by CRM record so a page of
# records never splits one record's fields.
_STAGE = f"""
INSERT INTO {QUEUE_TABLE}
WITH targets AS ({_TARGETS})
SELECT $run, $now::TIMESTAMPTZ, dense_rank() OVER (ORDER BY t.integration_connection_id, t.object_type, t.external_id) AS record_no,
       t.integration_connection_id, t.object_type, t.external_id,
       lower(trim(t.crm_field_name)) AS field_key, trim(t.crm_field_name) AS crm_field_name, t.crm_model_name,
       json(t.value)::VARCHAR AS value, t.recording_id, t.idempotency_key,
       coalesce(s.deliveries, 0) AS deliveries, t.partition_date,
       s.last_outcome, json(s.last_value)::VARCHAR AS last_value, s.last_fingerprint
FROM targets AS t
{_JOIN_STATE}
WHERE {_DUE}
"""

_PAGE = f"""
SELECT integration_connection_id, object_type, external_id, field_key, crm_field_name, crm_model_name, value,
       recording_id, idempotency_key, deliveries, partition_date, last_outcome, last_value, last_fingerprint
FROM {QUEUE_TABLE} WHERE run_id = ? AND record_no > ? AND record_no <= ?
ORDER BY record_no, field_key
"""

# Fields with a ready plan row in the run's days whose target the CRM already holds.
_UNCHANGED = f"""
WITH targets AS ({_TARGETS}),
in_run AS (
    SELECT DISTINCT integration_connection_id, object_type, external_id,
           lower(trim(crm_field_name)) AS field_key
    FROM {CRM_WRITEBACK_PLAN.qualified_name}
    WHERE plan_status = 'ready'
      AND ($partitions IS NULL OR partition_date IN (SELECT unnest($partitions::DATE[])))
)
SELECT count(*)
FROM targets AS t
{_JOIN_STATE}
JOIN in_run AS i
    ON i.integration_connection_id = t.integration_connection_id AND i.object_type = t.object_type
   AND i.external_id = t.external_id AND i.field_key = lower(trim(t.crm_field_name))
WHERE NOT {_DUE}
"""


class Candidate:
    """A due field's target next to its ledger state."""

    __slots__ = ("write", "last_outcome", "last_value", "last_fingerprint")

    def __init__(self, row: tuple) -> None:
        (connection_id, object_type, external_id, field_key, field_name, model, value, recording_id,
         plan_key, deliveries, partition_date, last_outcome, last_value, last_fingerprint) = row
        self.write = FieldWrite(
            connection_id, object_type, external_id, field_key, field_name, model,
            json.loads(value), recording_id, plan_key, deliveries, partition_date,
        )
        self.last_outcome, self.last_value, self.last_fingerprint = last_outcome, last_value, last_fingerprint

    def rejected_before(self, fingerprint: str | None) -> bool:
        """The CRM (or the schema) rejected this same value under the same configuration."""
        return (
            self.last_outcome == REJECTED
            and self.last_value == self.write.value_json
            and self.last_fingerprint == fingerprint
        )


def stage_due(
    con: duckdb.DuckDBPyConnection, run_id: str, now: datetime, write_nulls: Mapping[str, bool] | None = None,
) -> int:
    """Queue every due field (whatever its day) for `run_id` in `siro.crm_delivery_queue`;
    returns how many CRM records they belong to.

    `write_nulls` maps routing entries (connection ids, `"*"`) to their opt-in to clears;
    without it no connection clears. The work stays in DuckDB (which spills to disk), so
    the first delivery over a year of history loads nothing into Python here. Rows a
    crashed run left behind go a day later.
    """
    def work() -> None:
        con.execute(f"DELETE FROM {QUEUE_TABLE} WHERE run_id = $run OR staged_at < $now::TIMESTAMPTZ - INTERVAL 1 DAY",
                    {"run": run_id, "now": now})
        con.execute(_STAGE, {"run": run_id, "now": now, **clear_params(write_nulls)})

    _transaction(con, work)
    return con.execute(f"SELECT coalesce(max(record_no), 0) FROM {QUEUE_TABLE} WHERE run_id = ?",
                       [run_id]).fetchall()[0][0]


def due_page(con: duckdb.DuckDBPyConnection, run_id: str, after: int, records: int) -> list[Candidate]:
    """The queued fields of `run_id`'s records `after + 1 .. after + records`, a record's fields together."""
    return [Candidate(row) for row in con.execute(_PAGE, [run_id, after, after + records]).fetchall()]


def drop_due(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """Empty the run's queue once its delivery is over (other runs' rows stay)."""
    con.execute(f"DELETE FROM {QUEUE_TABLE} WHERE run_id = ?", [run_id])


def count_unchanged(
    con: duckdb.DuckDBPyConnection, partitions: Sequence[date] | None, write_nulls: Mapping[str, bool] | None = None,
) -> int:
    """How many fields with a plan row in `partitions` (all when None) the CRM already holds as targeted."""
    params = {"partitions": sorted(set(partitions)) if partitions is not None else None, **clear_params(write_nulls)}
    return con.execute(_UNCHANGED, params).fetchall()[0][0]


def record_run(con: duckdb.DuckDBPyConnection, run_id: str, started: datetime, finished: datetime,
               partitions: Sequence[date] | None, dry_run: bool, counts: Mapping[str, int],
               stopped: Sequence[str]) -> None:
    """One row of `siro.crm_delivery_runs`: the run's counts (a re-tried run replaces its row)."""
    params = {"run": run_id, "started": started, "finished": finished,
              "partitions": sorted(set(partitions)) if partitions is not None else None, "dry": dry_run,
              "unchanged": counts["unchanged"], "delivered": counts["delivered"], "rejected": counts["rejected"],
              "failed": counts["failed"], "would": counts["dry_run"], "withheld": counts["nulls_withheld"],
              "outstanding": counts["rejects_outstanding"], "calls": counts["api_calls"], "stopped": list(stopped)}
    # `upsert`, not INSERT OR REPLACE: a lake table has no PRIMARY KEY to replace on.
    _transaction(con, lambda: upsert(
        con, RUNS_TABLE, columns=_RUN_COLUMNS, key=("run_id",), params=params,
        source="""SELECT $run, $started::TIMESTAMPTZ, $finished::TIMESTAMPTZ, $partitions::DATE[], $dry, $unchanged,
            $delivered, $rejected, $failed, $would, $withheld, $outstanding, $calls, $stopped::VARCHAR[]""",
        updates=", ".join(f"{c} = excluded.{c}" for c in _RUN_COLUMNS[1:]),
    ))


_RUN_COLUMNS = ("run_id", "started_at", "finished_at", "partitions", "dry_run", "unchanged", "delivered", "rejected",
                "failed", "would_send", "nulls_withheld", "rejects_outstanding", "api_calls", "stopped")


def orphaned_intents(con: duckdb.DuckDBPyConnection, run_id: str, now: datetime | None = None) -> list[tuple]:
    """Deliveries a run that is no longer alive sent but never recorded an outcome for.

    A run is alive while it holds an unexpired delivery lease: its in-flight intents are
    its own, never orphans, whoever asks.
    """
    return con.execute(
        f"""SELECT integration_connection_id, object_type, external_id, crm_field_name,
                   json(pending_value)::VARCHAR, pending_recording_id, pending_delivery_key, pending_run_id
            FROM {STATE_TABLE} WHERE {_ORPHAN}""",
        _orphan_params(con, run_id, now),
    ).fetchall()


# An intent is an orphan when its run is neither the caller nor the lease's live holder.
_ORPHAN = f"""pending_value IS NOT NULL AND pending_run_id IS DISTINCT FROM $run
    AND pending_run_id IS DISTINCT FROM {LIVE_HOLDER_SQL}"""


def _orphan_params(con: duckdb.DuckDBPyConnection, run_id: str, now: datetime | None) -> dict:
    return {"run": run_id, "now": now or datetime.now(timezone.utc)}


def _rows(shape: dict[str, str]) -> str:
    """A FROM clause that unnests `$rows` (a JSON array of objects of `shape`) into columns.

    Passing a batch as one JSON parameter makes each ledger write one statement: DuckDB's
    `executemany` runs a statement per row, which costs milliseconds each.
    """
    structure = json.dumps([shape]).replace("'", "''")
    return f"(SELECT unnest(from_json($rows::JSON, '{structure}'), recursive := true))"


def _run(con: duckdb.DuckDBPyConnection, sql: str, rows: list[dict]) -> None:
    con.execute(sql, {"rows": json.dumps(rows, default=str)})


_V = "VARCHAR"
_INTENT_SHAPE = {k: _V for k in ("c", "o", "e", "f", "name", "value", "rec", "key", "run", "now")}
# Another live run's intent (its run holds the lease) is never overwritten: that run is
# sending the field, and its outcome is what the ledger must get.
_INTENT_COLUMNS = (*_FIELD.split(", "), "crm_field_name", "pending_value", "pending_recording_id",
                   "pending_delivery_key", "pending_run_id", "pending_since")


def _upsert_intents(con: duckdb.DuckDBPyConnection, params: dict) -> list[tuple]:
    return upsert(
        con, params=params, returning_keys=True, table=STATE_TABLE, columns=_INTENT_COLUMNS, key=_FIELD.split(", "),
        source=f"SELECT c, o, e, f, name, value::JSON, rec, key, run, now::TIMESTAMPTZ FROM {_rows(_INTENT_SHAPE)}",
        updates="""crm_field_name = excluded.crm_field_name, pending_value = excluded.pending_value,
    pending_recording_id = excluded.pending_recording_id,
    pending_delivery_key = excluded.pending_delivery_key,
    pending_run_id = excluded.pending_run_id, pending_since = excluded.pending_since""",
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
    rows = [
        dict(c=w.connection_id, o=w.object_type, e=w.external_id, f=w.field_key, name=w.crm_field_name,
             value=w.value_json, rec=w.recording_id, key=w.delivery_key, run=run_id, now=now.isoformat())
        for w in writes
    ]
    if not rows:
        return set()
    claimed: list[tuple] = []

    def work() -> None:
        # DuckDB takes no subquery in DO UPDATE: read the holder first, in the same transaction.
        holder = con.execute(f"SELECT {LIVE_HOLDER_SQL}", {"now": now}).fetchall()[0][0]
        # RETURNING gives the rows inserted or updated: those the WHERE kept are not ours.
        claimed[:] = (_upsert_intents(con, {"rows": json.dumps(rows, default=str), "holder": holder}))

    _transaction(con, work)
    return set(claimed)


_OUTCOME_SHAPE = {**{k: _V for k in ("c", "o", "e", "f", "name", "value", "rec", "key", "now", "outcome",
                                     "code", "message", "fp")}, "status": "INTEGER", "delivered": "BOOLEAN"}

# One row per outcome. In `excluded`, `deliveries` is 1 for a delivery and 0 otherwise,
# which is how the update below tells them apart.
_OUTCOME_COLUMNS = ('integration_connection_id', 'object_type', 'external_id', 'field_key', 'crm_field_name', 'acked_value', 'acked_recording_id', 'acked_delivery_key', 'acked_at', 'deliveries', 'last_outcome', 'last_value', 'last_recording_id', 'last_http_status', 'last_error_code', 'last_error_message', 'last_fingerprint', 'last_attempt_at')


def _upsert_outcomes(con: duckdb.DuckDBPyConnection, rows: list[dict]) -> None:
    # A failure leaves the CRM's value unknown (the write may have landed): keep the intent.
    upsert(
        con, table=STATE_TABLE, params={"rows": json.dumps(rows, default=str)}, columns=_OUTCOME_COLUMNS, key=_FIELD.split(", "),
        source=f"""SELECT c, o, e, f, name,
       CASE WHEN delivered THEN value::JSON END, CASE WHEN delivered THEN rec END,
       CASE WHEN delivered THEN key END, CASE WHEN delivered THEN now::TIMESTAMPTZ END,
       CASE WHEN delivered THEN 1 ELSE 0 END,
       outcome, value::JSON, rec, status, code, message, fp, now::TIMESTAMPTZ
FROM {_rows(_OUTCOME_SHAPE)}""",
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


_LOG_SHAPE = {**{k: _V for k in ("now", "run", "sink", "c", "o", "e", "name", "value", "rec", "pd", "outcome", "code",
                                 "message", "key")}, "status": "INTEGER"}
_LOG = f"""
INSERT INTO {LOG_TABLE} ({", ".join(name for name, _, _, _ in LOG_COLUMNS)})
SELECT now::TIMESTAMPTZ, run, sink, c, o, e, name, value::JSON, rec, pd::DATE, outcome, status, code, message, key
FROM {_rows(_LOG_SHAPE)}
"""


def _outcome_row(outcome: Outcome, sink: str, run_id: str, now: datetime) -> dict:
    w = outcome.write
    return dict(
        c=w.connection_id, o=w.object_type, e=w.external_id, f=w.field_key, name=w.crm_field_name,
        value=w.value_json, rec=w.recording_id, now=now.isoformat(), run=run_id, sink=sink,
        pd=w.partition_date.isoformat() if w.partition_date else None,
        # An unchanged field was not delivered: it has no delivery key of its own.
        key=None if outcome.status == SKIPPED_UNCHANGED else w.delivery_key,
        outcome=outcome.status, status=outcome.http_status, code=outcome.error_code,
        message=outcome.error_message, fp=outcome.fingerprint, delivered=outcome.status == DELIVERED,
    )


def record_outcomes(
    con: duckdb.DuckDBPyConnection, outcomes: Sequence[Outcome], sink: str, run_id: str, now: datetime,
    *, update_state: bool = True,
) -> None:
    """After sending: the log rows, and the field state (acknowledged value, reject, failure)."""
    if not outcomes:
        return
    rows = [_outcome_row(o, sink, run_id, now) for o in outcomes]

    def work() -> None:
        _run(con, _LOG, rows)
        if update_state:
            _upsert_outcomes(con, rows)

    _transaction(con, work)


def log_orphans(con: duckdb.DuckDBPyConnection, orphans: Sequence[tuple], run_id: str, now: datetime) -> None:
    """Log, once, that a run ended between sending and recording; the field stays due.

    Only intents of runs that are no longer alive are adopted (see `orphaned_intents`).
    """
    if not orphans:
        return
    rows = [
        dict(now=now.isoformat(), run=run_id, sink="ledger", c=c, o=o, e=e, name=f, value=value, rec=rec, pd=None,
             outcome=FAILED, status=None, code="outcome_unknown", key=key,
             message=f"run {prior} ended between sending and recording the outcome; the value is re-sent")
        for c, o, e, f, value, rec, key, prior in orphans
    ]

    def work() -> None:
        _run(con, _LOG, rows)
        # Adopt the intent so it is logged once; it is cleared when the re-send is recorded.
        params = _orphan_params(con, run_id, now)
        con.execute(f"UPDATE {STATE_TABLE} SET pending_run_id = $run WHERE {_ORPHAN}", params)

    _transaction(con, work)


_OUTBOX_SHAPE = {k: _V for k in ("key", "now", "run", "c", "o", "model", "e", "name", "value", "rec")}
_OUTBOX_COLUMNS = ("delivery_key", "queued_at", "run_id", "integration_connection_id", "object_type",
                   "crm_model_name", "external_id", "crm_field_name", "value", "recording_id")


def _upsert_outbox(con: duckdb.DuckDBPyConnection, rows: list[dict]) -> None:
    upsert(
        con, table=OUTBOX_TABLE, params={"rows": json.dumps(rows, default=str)}, columns=_OUTBOX_COLUMNS, key=("delivery_key",),
        source=f"SELECT key, now::TIMESTAMPTZ, run, c, o, model, e, name, value::JSON, rec FROM {_rows(_OUTBOX_SHAPE)}",
    )


def queue_outbox(con: duckdb.DuckDBPyConnection, writes: Sequence[FieldWrite], run_id: str | None, now: datetime) -> None:
    """Append writes to `siro.crm_outbox`; a delivery already queued is not queued twice."""
    rows = [
        dict(key=w.delivery_key, now=now.isoformat(), run=run_id, c=w.connection_id, o=w.object_type,
             model=w.crm_model_name, e=w.external_id, name=w.crm_field_name, value=w.value_json, rec=w.recording_id)
        for w in writes
    ]
    _transaction(con, lambda: _upsert_outbox(con, rows))


# Fields whose current target the CRM rejected or failed on: what the writeback check reports.
OUTSTANDING_SQL = f"""
WITH targets AS ({_TARGETS})
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
