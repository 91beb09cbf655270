"""HubSpot CRM v3: bearer token, `properties`, batch updates.

One `POST /crm/v3/objects/{objectType}/batch/update` carries up to 100 records. One
invalid input fails the whole batch (400 VALIDATION_ERROR), so the batch is split in
halves until the bad input is alone; the rest is delivered and that input is rejected
with HubSpot's error (its other properties are re-sent without the named bad ones). A
207 lists ids that were not found: those are rejects, the others are delivered. 429s
are retried after HubSpot's ten-second window, under a client-side pace.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx

from ..calls import CrmUnreachable
from ..config import HubSpotSettings
from ..schema import FieldSchema, hubspot_fields
from ..values import hubspot_wire
from ..writes import DELIVERED, FieldWrite, Outcome
from .base import (
    DeliveryStopped, Prepared, chunk_records, error_of, failed, group_records, json_body, outcomes_for,
    prepare_by_schema, reject, schema_from_response,
)
from .client import HttpCrmSink

_DETAILS = re.compile(r"(\[\{.*\}\])", re.DOTALL)


def _invalid_properties(message: str) -> dict[str, tuple[str, str]]:
    """property name -> (error, message) from a VALIDATION_ERROR message's embedded JSON list."""
    found = _DETAILS.search(message or "")
    if not found:
        return {}
    try:
        details = json.loads(found.group(1))
    except ValueError:
        return {}
    return {
        str(d["name"]): (str(d.get("error") or "VALIDATION_ERROR"), str(d.get("message") or ""))
        for d in details if isinstance(d, dict) and d.get("name")
    }


class HubSpotSink(HttpCrmSink):
    """Writes to one HubSpot portal."""

    name = "hubspot"
    repr_field = "base_url"
    settings: HubSpotSettings

    def __init__(self, settings: HubSpotSettings, **options: Any) -> None:
        super().__init__(settings, **options)
        self._base = settings.base_url.rstrip("/")
        self._schemas: dict[str, dict[str, FieldSchema] | None] = {}

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.token.get_secret_value()}"}

    def _pacing(self) -> dict[str, float]:
        return {"rate_limit_window": self.settings.rate_limit_window_seconds,
                "requests_per_second": self.settings.requests_per_second}

    def _request(self, method: str, path: str, **kwargs) -> httpx.Response:
        response = self.calls.request(method, f"{self._base}{path}", **kwargs)
        if response.status_code == 401:
            code, message = error_of(json_body(response), "INVALID_AUTHENTICATION")
            raise DeliveryStopped(code, f"HubSpot refused the token: {message}", [], 401)
        return response

    def _fields(self, object_type: str) -> dict[str, FieldSchema] | None:
        if object_type not in self._schemas:
            self._schemas[object_type] = schema_from_response(
                self._request("GET", f"/crm/v3/properties/{object_type}"),
                hubspot_fields,
                what=f"properties of {object_type}",
                missing_statuses=(400, 404),
            )
        return self._schemas[object_type]

    def prepare(self, writes: list[FieldWrite]) -> tuple[list[Prepared], list[Outcome]]:
        """Map object types, read each type's properties once, coerce values to strings."""
        return prepare_by_schema(
            writes,
            crm="HubSpot",
            settings_fingerprint=self.settings.fingerprint(),
            object_types=self.settings.object_types,
            fields_of=self._fields,
            case_sensitive=True,
            wire=hubspot_wire,
        )

    def batches(self, prepared: list[Prepared]) -> Iterator[list[Prepared]]:
        """At most `batch_size` records of one object type per call."""
        return chunk_records(prepared, self.settings.batch_size, key=lambda record: record[1])

    def send(self, batch: list[Prepared]) -> list[Outcome]:
        """Send one batch of one object type, splitting it to isolate invalid inputs.

        A stop (a revoked token) carries every outcome gathered so far: halves of a split
        batch HubSpot already accepted stay delivered.
        """
        outcomes: list[Outcome] = []
        try:
            self._send(list(group_records(batch).values()), outcomes)
        except DeliveryStopped as exc:
            raise exc.after(outcomes) from None
        return outcomes

    def _send(self, records: list[list[Prepared]], outcomes: list[Outcome]) -> None:
        object_type = records[0][0].wire_object
        body = {"inputs": [
            {"id": r[0].write.external_id, "properties": {p.wire_field: p.wire_value for p in r}} for r in records
        ]}
        flat = [p for r in records for p in r]
        try:
            response = self._request("POST", f"/crm/v3/objects/{object_type}/batch/update", json=body)
        except CrmUnreachable as exc:
            outcomes += failed(flat, f"http_{exc.status}" if exc.status else "unreachable", str(exc), exc.status)
            return
        answer = json_body(response)
        status = response.status_code
        if status == 200:
            outcomes += outcomes_for(flat, DELIVERED, http_status=200)
        elif status == 207:
            self._partial(records, answer if isinstance(answer, dict) else {}, outcomes)
        elif status == 400 and isinstance(answer, dict) and answer.get("category") == "VALIDATION_ERROR":
            self._isolate(records, answer, outcomes)
        else:
            code, message = error_of(answer, f"http_{status}")
            outcomes += failed(flat, code, message or "unexpected answer", status)

    def _partial(self, records: list[list[Prepared]], answer: dict, outcomes: list[Outcome]) -> None:
        rejected: dict[str, tuple[str, str]] = {}
        for error in answer.get("errors") or []:
            for rid in (error.get("context") or {}).get("ids") or []:
                rejected[str(rid)] = (str(error.get("category") or "OBJECT_NOT_FOUND"), str(error.get("message") or ""))
        for record in records:
            problem = rejected.get(record[0].write.external_id)
            if problem is None:
                outcomes += outcomes_for(record, DELIVERED, http_status=207)
            else:
                outcomes += [reject(p.write, *problem, p.fingerprint, 207) for p in record]

    def _isolate(self, records: list[list[Prepared]], answer: dict, outcomes: list[Outcome]) -> None:
        if len(records) > 1:
            middle = len(records) // 2
            self._send(records[:middle], outcomes)
            self._send(records[middle:], outcomes)
            return
        record = records[0]
        message = str(answer.get("message") or "")
        invalid = _invalid_properties(message)
        bad = [p for p in record if p.wire_field in invalid]
        good = [p for p in record if p.wire_field not in invalid]
        if not bad:
            outcomes += [reject(p.write, "VALIDATION_ERROR", message, p.fingerprint, 400) for p in record]
            return
        outcomes += [reject(p.write, *invalid[p.wire_field], p.fingerprint, 400) for p in bad]
        if good:
            self._send([good], outcomes)
