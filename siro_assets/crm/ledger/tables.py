"""The ledger's tables: their names, their DDL, and creating them all.

`crm_writeback_state` has one row per CRM field with the value the CRM last acknowledged
(and its source recording), the intent of a delivery in flight, and the last attempt's
outcome. `crm_writeback_log` has one row per attempt; `crm_delivery_runs` one row per
delivery, with the fields it found unchanged as a count. `crm_delivery_queue` holds the
due fields of the delivery in progress. The DDL text is part of the writeback assets'
code version: edit it only for a real change of the tables.
"""

from __future__ import annotations

import duckdb

from ...transforms.writeback_plan import CRM_WRITEBACK_PLAN
from ...warehouse.backend import create_keyed_table
from ...warehouse.schema import ensure_schema
from ..lease import LEASE_DDL

STATE_TABLE = "crm_writeback_state"
LOG_TABLE = "crm_writeback_log"
OUTBOX_TABLE = "crm_outbox"
RUNS_TABLE = "crm_delivery_runs"
QUEUE_TABLE = "crm_delivery_queue"

#: `crm_delivery_runs` columns in table order (the upsert of a run's row names them).
RUN_COLUMNS = ("run_id", "started_at", "finished_at", "partitions", "dry_run", "unchanged", "delivered", "rejected",
               "failed", "would_send", "nulls_withheld", "rejects_outstanding", "api_calls", "stopped")

#: The columns that name one CRM field: the state table's key.
FIELD_COLUMNS = ("integration_connection_id", "object_type", "external_id", "field_key")
_FIELD = ", ".join(FIELD_COLUMNS)

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
