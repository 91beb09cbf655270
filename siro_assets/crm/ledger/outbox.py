"""`crm_outbox`: due writes queued for a reverse-ETL tool, once per delivery."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import duckdb

from ...warehouse.backend import upsert
from ..writes import FieldWrite
from .rows import RowBatch, in_transaction
from .tables import OUTBOX_TABLE

_V = "VARCHAR"
_OUTBOX = RowBatch({"delivery_key": _V, "queued_at": "TIMESTAMPTZ", "run_id": _V, "integration_connection_id": _V,
                    "object_type": _V, "crm_model_name": _V, "external_id": _V, "crm_field_name": _V,
                    "value": "JSON", "recording_id": _V})


def outbox_row(w: FieldWrite, run_id: str | None, now: datetime) -> dict[str, object]:
    """The outbox row that queues `w`."""
    return dict(delivery_key=w.delivery_key, queued_at=now.isoformat(), run_id=run_id,
                integration_connection_id=w.connection_id, object_type=w.object_type,
                crm_model_name=w.crm_model_name, external_id=w.external_id, crm_field_name=w.crm_field_name,
                value=w.value_json, recording_id=w.recording_id)


def upsert_outbox(con: duckdb.DuckDBPyConnection, rows: Sequence[dict[str, object]]) -> None:
    """Insert outbox rows, in the caller's transaction; a delivery key already queued is kept."""
    columns = tuple(_OUTBOX.columns)
    upsert(con, table=OUTBOX_TABLE, params=_OUTBOX.params(rows), columns=columns, key=("delivery_key",),
           source=f"SELECT {', '.join(columns)} FROM {_OUTBOX.source}")


def queue_outbox(con: duckdb.DuckDBPyConnection, writes: Sequence[FieldWrite], run_id: str | None, now: datetime) -> None:
    """Append writes to `crm_outbox`; a delivery already queued is not queued twice."""
    rows = [outbox_row(w, run_id, now) for w in writes]
    in_transaction(con, lambda: upsert_outbox(con, rows))
