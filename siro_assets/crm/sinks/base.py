"""What every sink offers the delivery loop, and what they share.

A sink first `prepare`s the due writes (reads the CRM's schema, coerces each value,
rejects what cannot fit), then `send`s batches of prepared writes and answers one
`Outcome` per write. The delivery loop records intent before each `send` and the
outcomes after it, so a sink never touches the ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from ... import redaction
from ..schema import FieldSchema, Rejection, coerce, find_field
from ..writes import FAILED, REJECTED, UNSUPPORTED_OBJECT, CallStats, FieldWrite, Outcome


@dataclass(frozen=True)
class Prepared:
    """A write ready for the wire: the CRM's object, field name and value."""

    write: FieldWrite
    wire_object: str
    wire_field: str
    wire_value: Any
    fingerprint: str
    """Connection settings and field schema the value was prepared under."""


class DeliveryStopped(Exception):
    """The CRM refuses every further write this run (daily quota, bad credentials).

    `outcomes` are every answer gathered for the batch being sent, up to the stop
    (writes the CRM accepted before it stopped are among them, as delivered); the
    writes of the batch without an outcome were not applied and wait for the next run.
    Code and message are scrubbed of every configured secret.
    """

    def __init__(self, code: str, message: str, outcomes: list[Outcome], http_status: int | None = None) -> None:
        code, message = redaction.scrub(str(code)), redaction.scrub(str(message))
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.outcomes = list(outcomes)
        self.http_status = http_status

    def after(self, earlier: list[Outcome]) -> "DeliveryStopped":
        """The same stop, carrying `earlier` outcomes of the batch before its own."""
        return DeliveryStopped(self.code, self.message, [*earlier, *self.outcomes], self.http_status)


class Sink(Protocol):
    """A destination for CRM field writes."""

    name: str
    stats: CallStats

    def prepare(self, writes: list[FieldWrite]) -> tuple[list[Prepared], list[Outcome]]:
        """Writes ready to send, and rejects decided before sending."""

    def batches(self, prepared: list[Prepared]) -> Iterator[list[Prepared]]:
        """The prepared writes in the groups `send` takes (one CRM request's worth)."""

    def send(self, batch: list[Prepared]) -> list[Outcome]:
        """Send one batch; one outcome per write. May raise `DeliveryStopped`."""

    def close(self) -> None:
        """Release connections."""


def outcomes_for(
    prepared: Iterable[Prepared], status: str, *, http_status: int | None = None,
    code: str | None = None, message: str | None = None,
) -> list[Outcome]:
    """The same outcome for each prepared write."""
    return [
        Outcome(p.write, status, http_status, code, message, p.fingerprint) for p in prepared
    ]


def reject(write: FieldWrite, code: str, message: str, fingerprint: str | None, http_status: int | None = None) -> Outcome:
    """A reject outcome for one write."""
    return Outcome(write, REJECTED, http_status, code, message, fingerprint)


def failed(prepared: Iterable[Prepared], code: str, message: str, http_status: int | None = None) -> list[Outcome]:
    """A failure outcome for each prepared write."""
    return outcomes_for(prepared, FAILED, http_status=http_status, code=code, message=message)


def group_records(prepared: Iterable[Prepared]) -> dict[tuple[str, str, str], list[Prepared]]:
    """Prepared writes grouped by CRM record (connection, object, id), in first-seen order."""
    records: dict[tuple[str, str, str], list[Prepared]] = {}
    for p in prepared:
        records.setdefault((p.write.connection_id, p.wire_object, p.write.external_id), []).append(p)
    return records


def chunk_records(prepared: list[Prepared], size: int, *, key=None) -> Iterator[list[Prepared]]:
    """Batches of at most `size` records (all fields of one record stay together)."""
    groups: dict[Any, dict[tuple[str, str, str], list[Prepared]]] = {}
    for record, fields in group_records(prepared).items():
        groups.setdefault(key(record) if key else None, {})[record] = fields
    for records in groups.values():
        items = list(records.values())
        for start in range(0, len(items), size):
            yield [p for fields in items[start:start + size] for p in fields]


def json_body(response: httpx.Response) -> Any:
    """The response's JSON, or None when it has none."""
    try:
        return response.json()
    except ValueError:
        return None


def error_of(body: Any, default: str) -> tuple[str, str]:
    """(code, message) from a Salesforce error list or a HubSpot / generic error object."""
    if isinstance(body, list) and body and isinstance(body[0], dict):
        first = body[0]
        return str(first.get("errorCode") or first.get("statusCode") or default), str(first.get("message") or "")
    if isinstance(body, dict):
        code = body.get("category") or body.get("errorCode") or body.get("error") or body.get("code") or default
        message = body.get("message") or body.get("error_description") or ""
        return str(code), str(message)
    return default, ""


def prepare_by_schema(
    writes: list[FieldWrite],
    *,
    crm: str,
    settings_fingerprint: str,
    object_types: dict[str, str],
    fields_of: Callable[[str], dict[str, FieldSchema] | None],
    case_sensitive: bool,
    wire: Callable[[Any], Any],
) -> tuple[list[Prepared], list[Outcome]]:
    """Map each write's object type, look its field up in the CRM's schema, coerce the value.

    `fields_of(object)` reads (and caches) one object's schema, or None when the CRM has no
    such object. What cannot fit is rejected here, before any write call is spent on it.
    """
    ready, rejects = [], []
    for write in writes:
        wire_object = object_types.get(write.object_type)
        if wire_object is None:
            rejects.append(reject(write, UNSUPPORTED_OBJECT, f"{crm} has no writable object configured for {write.object_type}", settings_fingerprint))
            continue
        fields = fields_of(wire_object)
        if fields is None:
            rejects.append(reject(write, UNSUPPORTED_OBJECT, f"{crm} has no object {wire_object}", settings_fingerprint))
            continue
        try:
            schema = find_field(fields, write.crm_field_name, case_sensitive=case_sensitive)
            fingerprint = f"{settings_fingerprint}:{schema.fingerprint()}"
            value = coerce(write.value, schema)
        except Rejection as exc:
            rejects.append(reject(write, exc.code, exc.message, settings_fingerprint))
            continue
        ready.append(Prepared(write, wire_object, schema.name, wire(value), fingerprint))
    return ready, rejects


def schema_from_response(
    response: httpx.Response,
    parse: Callable[[Any], dict[str, FieldSchema]],
    *,
    what: str,
    missing_statuses: tuple[int, ...] = (404,),
) -> dict[str, FieldSchema] | None:
    """One object's field schemas from a schema endpoint's answer; None when the CRM has
    no such object. Any other failure stops the delivery: without the schema nothing can
    be coerced safely."""
    if response.status_code in missing_statuses:
        return None
    if response.status_code != 200:
        code, message = error_of(json_body(response), f"http_{response.status_code}")
        raise DeliveryStopped(code, f"{what}: {message}", [], response.status_code)
    return parse(response.json())
