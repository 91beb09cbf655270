"""The embedded default: due writes are appended to `siro.crm_outbox` for any
reverse-ETL tool to pick up. "Delivered" means queued there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime, timezone

import duckdb

from ..config import OutboxSettings
from ..ledger import queue_outbox
from ..writes import DELIVERED, CallStats, FieldWrite, Outcome
from .base import Prepared, outcomes_for

OUTBOX_BATCH = 1000


class OutboxSink:
    """Queues writes in the warehouse; opens a connection only for each batch's insert."""

    name = "outbox"

    def __init__(
        self,
        settings: OutboxSettings,
        connect: Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]],
        *,
        run_id: str | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self.settings = settings
        self.stats = CallStats()
        self._connect = connect
        self._run_id = run_id
        self._now = now

    def prepare(self, writes: list[FieldWrite]) -> tuple[list[Prepared], list[Outcome]]:
        """Values are queued as extracted; there is no schema to check them against."""
        fingerprint = self.settings.fingerprint()
        return [Prepared(w, w.object_type, w.crm_field_name, w.value, fingerprint) for w in writes], []

    def batches(self, prepared: list[Prepared]) -> Iterator[list[Prepared]]:
        """Batches of up to 1,000 writes."""
        for start in range(0, len(prepared), OUTBOX_BATCH):
            yield prepared[start:start + OUTBOX_BATCH]

    def send(self, batch: list[Prepared]) -> list[Outcome]:
        """Insert the batch into the outbox in one transaction."""
        with self._connect() as con:
            queue_outbox(con, [p.write for p in batch], self._run_id, self._now())
        return outcomes_for(batch, DELIVERED)

    def close(self) -> None:
        """Nothing to release."""
