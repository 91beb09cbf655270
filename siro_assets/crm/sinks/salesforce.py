"""Salesforce: client-credentials OAuth, `describe`, sObject Collections updates.

All due fields of one record travel as one record of a `PATCH composite/sobjects` call
(`allOrNone: false`, at most 200 records). Salesforce applies or fails each record as a
whole: a record failed for a named field is re-sent without that field, and only that
field is rejected; a record failed with no field named (a validation rule shown at the
top of the page) has its fields re-sent one at a time, so only the refused one is
rejected. `UNABLE_TO_LOCK_ROW`, `UNKNOWN_EXCEPTION`, `SERVER_UNAVAILABLE` and
`REQUEST_RUNNING_TOO_LONG` are retried, then failed; other codes are rejects. An expired
session (401 INVALID_SESSION_ID) gets one new token; `403 REQUEST_LIMIT_EXCEEDED` stops
the delivery.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

from ... import redaction
from ..calls import CrmUnreachable
from ..config import SalesforceSettings
from ..schema import FieldSchema, salesforce_fields
from ..values import salesforce_wire
from ..writes import DELIVERED, FieldWrite, Outcome
from .base import (
    DeliveryStopped, Prepared, chunk_records, error_of, failed, group_records, json_body, outcomes_for,
    prepare_by_schema, reject, schema_from_response,
)
from .client import HttpCrmSink

# Record errors that may pass on a later attempt: failures to retry, never rejects.
TRANSIENT_CODES = {"UNABLE_TO_LOCK_ROW", "UNKNOWN_EXCEPTION", "SERVER_UNAVAILABLE", "REQUEST_RUNNING_TOO_LONG"}
STOP_CODES = {"REQUEST_LIMIT_EXCEEDED"}
# Errors about the record itself, not one of its fields: sending its fields one at a
# time would only repeat the error.
RECORD_CODES = {
    "ENTITY_IS_DELETED", "ENTITY_IS_LOCKED", "INVALID_TYPE", "MALFORMED_ID", "INVALID_ID_FIELD",
    "INSUFFICIENT_ACCESS_OR_READONLY",
}


class SalesforceSink(HttpCrmSink):
    """Writes to one Salesforce org."""

    name = "salesforce"
    repr_field = "login_url"
    settings: SalesforceSettings

    def __init__(self, settings: SalesforceSettings, **options: Any) -> None:
        super().__init__(settings, **options)
        self._token: str | None = None
        self._instance_url: str | None = None
        self._schemas: dict[str, dict[str, FieldSchema] | None] = {}

    # --- auth -------------------------------------------------------------------------
    def _authenticate(self) -> None:
        url = self.settings.login_url.rstrip("/") + "/services/oauth2/token"
        response = self.calls.request("POST", url, data={
            "grant_type": "client_credentials",
            "client_id": self.settings.client_id.get_secret_value(),
            "client_secret": self.settings.client_secret.get_secret_value(),
        })
        body = json_body(response)
        if response.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
            code, message = error_of(body, f"http_{response.status_code}")
            raise DeliveryStopped(code, f"Salesforce token request failed: {message}", [], response.status_code)
        self._token = body["access_token"]
        redaction.register(self._token)
        self._instance_url = str(body.get("instance_url") or self.settings.login_url).rstrip("/")

    def _call(self, method: str, path: str, **kwargs) -> httpx.Response:
        for attempt in range(2):
            if self._token is None:
                self._authenticate()
            headers = {"Authorization": f"Bearer {self._token}"}
            response = self.calls.request(method, f"{self._instance_url}{path}", headers=headers, **kwargs)
            if response.status_code == 401 and attempt == 0:
                # The session expired (INVALID_SESSION_ID): one new token, one retry.
                self._token = None
                continue
            return response
        return response

    def _data_path(self, tail: str) -> str:
        return f"/services/data/v{self.settings.api_version}/{tail}"

    # --- schema -------------------------------------------------------------------------
    def _fields(self, sobject: str) -> dict[str, FieldSchema] | None:
        if sobject not in self._schemas:
            self._schemas[sobject] = schema_from_response(
                self._call("GET", self._data_path(f"sobjects/{sobject}/describe")),
                salesforce_fields,
                what=f"describe {sobject} failed",
            )
        return self._schemas[sobject]

    def prepare(self, writes: list[FieldWrite]) -> tuple[list[Prepared], list[Outcome]]:
        """Map object types, read each sObject's describe once, coerce values."""
        return prepare_by_schema(
            writes,
            crm="Salesforce",
            settings_fingerprint=self.settings.fingerprint(),
            object_types=self.settings.object_types,
            fields_of=self._fields,
            case_sensitive=False,
            wire=salesforce_wire,
        )

    # --- writes -------------------------------------------------------------------------
    def batches(self, prepared: list[Prepared]) -> Iterator[list[Prepared]]:
        """At most `batch_size` records per call; all fields of a record in one record."""
        return chunk_records(prepared, self.settings.batch_size)

    def send(self, batch: list[Prepared]) -> list[Outcome]:
        """Send records until each field is delivered, rejected or out of attempts.

        A stop (quota, a failed re-authentication) carries every outcome gathered so far:
        records delivered by an earlier request of the batch stay delivered.
        """
        outcomes: list[Outcome] = []
        try:
            self._deliver(list(group_records(batch).values()), outcomes)
        except DeliveryStopped as exc:
            raise exc.after(outcomes) from None
        return outcomes

    def _deliver(self, records: list[list[Prepared]], outcomes: list[Outcome]) -> None:
        # (fields to send, transient failures so far) per record still to be answered.
        queue: list[tuple[list[Prepared], int]] = [(r, 0) for r in records]
        while queue:
            request, queue = _one_per_record(queue)
            tries = max(t for _, t in request)
            if tries:
                self.calls.sleep(self.calls.initial_backoff * 2 ** (tries - 1))
            queue = self._send_once(request, outcomes) + queue

    def _send_once(self, request: list[tuple[list[Prepared], int]], outcomes: list[Outcome]) -> list[tuple[list[Prepared], int]]:
        records = [r for r, _ in request]
        body = {
            "allOrNone": False,
            "records": [
                {"attributes": {"type": r[0].wire_object}, "id": r[0].write.external_id,
                 **{p.wire_field: p.wire_value for p in r}}
                for r in records
            ],
        }
        flat = [p for r in records for p in r]
        try:
            response = self._call("PATCH", self._data_path("composite/sobjects"), json=body)
        except CrmUnreachable as exc:
            outcomes += failed(flat, f"http_{exc.status}" if exc.status else "unreachable", str(exc), exc.status)
            return []
        answer = json_body(response)
        if response.status_code != 200 or not isinstance(answer, list) or len(answer) != len(records):
            code, message = error_of(answer, f"http_{response.status_code}")
            if code in STOP_CODES or response.status_code == 401:
                raise DeliveryStopped(code, message, failed(flat, code, message, response.status_code),
                                      response.status_code)
            outcomes += failed(flat, code, message or "unexpected answer", response.status_code)
            return []
        again: list[tuple[list[Prepared], int]] = []
        for (record, tries), result in zip(request, answer):
            again += self._judge(record, tries, result, outcomes)
        return again

    def _judge(self, record: list[Prepared], tries: int, result: dict, outcomes: list[Outcome]) -> list[tuple[list[Prepared], int]]:
        if result.get("success"):
            outcomes += outcomes_for(record, DELIVERED, http_status=200)
            return []
        errors = [e for e in result.get("errors") or [] if isinstance(e, dict)] or [{}]
        transient = next((e for e in errors if str(e.get("statusCode")) in TRANSIENT_CODES), None)
        if transient is not None:
            if tries + 1 < self.settings.max_attempts:
                return [(record, tries + 1)]
            # Still refused after every attempt: unknown to the CRM, tried next run.
            code, message = str(transient.get("statusCode")), str(transient.get("message") or "")
            outcomes += failed(record, code, message or "still refused after every attempt", 200)
            return []
        named = {str(f).lower(): e for e in reversed(errors) for f in (e.get("fields") or [])}
        bad = [p for p in record if p.wire_field.lower() in named]
        good = [p for p in record if p.wire_field.lower() not in named]
        if bad:
            # The record failed as a whole for the named fields: re-send the rest without them.
            for p in bad:
                outcomes.append(_reject(p, named[p.wire_field.lower()]))
            return [(good, tries)] if good else []
        first = errors[0]
        if len(record) > 1 and not named and str(first.get("statusCode")) not in RECORD_CODES:
            # No field named (a validation rule shown at the top of the page): send each
            # field alone to find the one refused, as the HubSpot sink splits a batch.
            return [([p], tries) for p in record]
        outcomes += [_reject(p, first) for p in record]
        return []


def _reject(p: Prepared, error: dict) -> Outcome:
    return reject(p.write, str(error.get("statusCode")), str(error.get("message", "")), p.fingerprint, 200)


def _one_per_record(queue: list[tuple[list[Prepared], int]]) -> tuple[list, list]:
    """The entries for one request (each record once: Salesforce refuses a duplicate id), and the rest."""
    seen: set[tuple[str, str]] = set()
    now, later = [], []
    for entry in queue:
        key = (entry[0][0].wire_object, entry[0][0].write.external_id)
        (later if key in seen else now).append(entry)
        seen.add(key)
    return now, later
