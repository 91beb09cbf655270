"""What a delivery moves: one CRM field write in, one outcome out.

A `FieldWrite` is one CRM field's target value (the newest live recording's value, from
`LATEST_WRITES_SQL`) that the ledger says is due. An `Outcome` is what became of one
attempt to write it; every outcome becomes one row of `siro.crm_writeback_log`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from .. import redaction

DELIVERED = "delivered"
REJECTED = "rejected"
FAILED = "failed"
# Only in log rows of earlier versions: unchanged fields are now counted per run.
SKIPPED_UNCHANGED = "skipped_unchanged"
DRY_RUN = "dry_run"

# Reasons for rejecting a value before any write is sent.
UNKNOWN_FIELD = "unknown_field"
NOT_UPDATEABLE = "not_updateable"
INVALID_VALUE = "invalid_value"
UNSUPPORTED_OBJECT = "unsupported_object"
NO_ROUTE = "no_route"
# An id that would change the HTTP sink's URL path (empty, ".", ".."): never sent.
INVALID_EXTERNAL_ID = "invalid_external_id"


@dataclass(frozen=True)
class FieldWrite:
    """One CRM field's due value: where it goes, what it is, where it came from."""

    connection_id: str
    object_type: str
    external_id: str
    field_key: str
    """The field's identity: `lower(trim(crm_field_name))`."""
    crm_field_name: str
    crm_model_name: str
    value: Any
    """The value as JSON-decoded Python (str, int, float, bool, None or a list of those)."""
    recording_id: str
    plan_key: str
    """The plan's `idempotency_key`: this recording's write of this value."""
    deliveries: int = 0
    """How many deliveries of this field the ledger has acknowledged so far."""
    partition_date: date | None = None
    """UTC day of the source recording's createdAt."""

    @property
    def identity(self) -> tuple[str, str, str, str]:
        """(connection, object type, external id, field key): one CRM field."""
        return (self.connection_id, self.object_type, self.external_id, self.field_key)

    @property
    def value_json(self) -> str:
        """The value as minified JSON, the form the ledger stores and compares."""
        return canonical_json(self.value)

    @property
    def delivery_key(self) -> str:
        """Key of this delivery: stable across retries of it, new for the next delivery.

        The plan key names the recording's write of the value; the count of deliveries
        acknowledged so far changes once this one is acknowledged, so sending the same
        value again later (A -> B -> A) is a new delivery with a new key, while a retry
        after a lost response reuses the key.
        """
        return hashlib.sha256(f"{self.plan_key}:{self.deliveries}".encode()).hexdigest()


@dataclass(frozen=True)
class Outcome:
    """What became of one attempt to write one field."""

    write: FieldWrite
    status: str
    http_status: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    fingerprint: str | None = None
    """Configuration and field-schema fingerprint the attempt was made under."""

    def __post_init__(self) -> None:
        # Every outcome becomes a log row and the field's state: the one place all
        # error text passes on its way to a table, whichever sink or CRM wrote it.
        object.__setattr__(self, "error_code", redaction.scrub(self.error_code))
        object.__setattr__(self, "error_message", redaction.scrub(self.error_message))

    def with_fingerprint(self, fingerprint: str | None) -> "Outcome":
        """The same outcome, stamped with the configuration it was decided under."""
        return replace(self, fingerprint=fingerprint)


@dataclass
class CallStats:
    """API calls a sink made, and how many of them a CRM answered 429."""

    api_calls: int = 0
    rate_limited: int = 0
    extra: dict[str, int] = field(default_factory=dict)


def canonical_json(value: Any) -> str:
    """Minified JSON with unescaped Unicode, as DuckDB's `json()` renders a value."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
