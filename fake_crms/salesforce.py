"""A fake Salesforce org: client-credentials tokens that expire, `describe`, sObject
Collections updates with per-record errors (naming the field, or none for a validation
rule shown at the top of the page), transient record errors (`UNABLE_TO_LOCK_ROW`,
`UNKNOWN_EXCEPTION`, `SERVER_UNAVAILABLE`, `REQUEST_RUNNING_TOO_LONG`) as faults, and a
request quota.

Shapes follow Salesforce's REST API (see `/work/shared/reference/crm-write-apis.md`):
token `POST /services/oauth2/token`; `GET /services/data/vXX.X/sobjects/{Type}/describe`;
`PATCH /services/data/vXX.X/composite/sobjects` answering one result per record, in order;
`GET /services/data/vXX.X/sobjects/{Type}/{id}` reads a record's applied fields back (so a
test driving the fake in another process can see what the org holds).
"""

from __future__ import annotations

import json
import re
import threading
from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qs

from siro_assets.simulator.clock import Clock
from .common import (
    DISCONNECT, LOCKED, LOST_RESPONSE, RECORD_UNAVAILABLE, RUNNING_TOO_LONG, SERVER_ERROR, UNAVAILABLE,
    UNKNOWN_EXCEPTION, CrmFaults, Journal, LostResponse, Reply, bearer, reply,
)
from .schemas import SALESFORCE_OBJECTS, SALESFORCE_PREFIXES

# Record-level faults: the error the first record of a request gets.
_RECORD_FAULTS = {
    LOCKED: ("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record"),
    UNKNOWN_EXCEPTION: ("UNKNOWN_EXCEPTION", "An unexpected error occurred. Please include this ErrorId if you "
                                             "contact support: 1234567890-12345 (-987654321)"),
    RECORD_UNAVAILABLE: ("SERVER_UNAVAILABLE", "Server temporarily unavailable"),
    RUNNING_TOO_LONG: ("REQUEST_RUNNING_TOO_LONG", "Your request was running for too long, and has been stopped."),
}
_ID = re.compile(r"^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$")
_PATH = re.compile(r"^/services/data/v(\d+\.\d+)/(.+)$")


def _errors(*errors: dict) -> list[dict]:
    return list(errors)


class FakeSalesforce:
    """One fake org. `records[(type, id)]` holds the applied field values."""

    def __init__(
        self,
        clock: Clock,
        *,
        client_id: str = "fake-client-id",
        client_secret: str = "fake-client-secret",
        objects: dict[str, list[dict]] | None = None,
        token_ttl: timedelta = timedelta(hours=2),
        daily_limit: int | None = None,
        deleted_ids: set[str] | None = None,
        validation_rules: dict[tuple[str, str], Any] | None = None,
        top_of_page_rules: dict[tuple[str, str], Any] | None = None,
        faults: CrmFaults | None = None,
    ) -> None:
        self.clock = clock
        self.client_id, self.client_secret = client_id, client_secret
        self.objects = objects or SALESFORCE_OBJECTS
        self.token_ttl = token_ttl
        self.daily_limit = daily_limit
        self.deleted_ids = set(deleted_ids or ())
        self.validation_rules = validation_rules or {}
        """(type, field) -> callable(value) returning an error message or None."""
        self.top_of_page_rules = top_of_page_rules or {}
        """The same, for rules whose error shows at the top of the page: it names no field."""
        self.faults = faults or CrmFaults()
        self.records: dict[tuple[str, str], dict[str, Any]] = {}
        self.journal = Journal()
        self.requests: list[tuple[str, str]] = []
        self.api_calls = 0
        self.tokens_issued = 0
        self._tokens: dict[str, Any] = {}
        self._lock = threading.Lock()

    def expire_tokens(self) -> None:
        """End every session, as an org's session timeout would."""
        self._tokens.clear()

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes, base: str) -> Reply:
        """Answer one request; `base` is the URL this fake is served under (its instance_url)."""
        with self._lock:
            self.requests.append((method, path))
            if path == "/services/oauth2/token" and method == "POST":
                return self._token(body, base)
            token = bearer(headers)
            expires = self._tokens.get(token or "")
            if expires is None or expires <= self.clock.now():
                return reply(401, _errors({"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}))
            self.api_calls += 1
            limit_info = {"Sforce-Limit-Info": f"api-usage={self.api_calls}/{self.daily_limit or 100000}"}
            if self.daily_limit is not None and self.api_calls > self.daily_limit:
                return reply(403, _errors({"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}),
                             limit_info)
            fault = self.faults.next((SERVER_ERROR, UNAVAILABLE, DISCONNECT, LOST_RESPONSE, *_RECORD_FAULTS))
            if fault in (SERVER_ERROR, UNAVAILABLE):
                return reply(500 if fault == SERVER_ERROR else 503,
                             _errors({"message": "simulated outage", "errorCode": "SERVER_UNAVAILABLE"}))
            if fault == DISCONNECT:
                raise LostResponse(applied=False)
            match = _PATH.match(path)
            if not match:
                return reply(404, _errors({"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}))
            tail = match.group(2)
            if method == "GET" and tail.startswith("sobjects/") and tail.endswith("/describe"):
                return self._describe(tail.split("/")[1], limit_info)
            if method == "GET" and tail.startswith("sobjects/") and tail.count("/") == 2:
                return self._read(*tail.split("/")[1:], limit_info)
            if method == "PATCH" and tail == "composite/sobjects":
                status, out_headers, content, applied = self._collections(body, limit_info, record_fault=fault)
                if fault == LOST_RESPONSE:
                    raise LostResponse(applied=True)
                Journal.acknowledge(applied)
                return status, out_headers, content
            return reply(404, _errors({"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}))

    def _token(self, body: bytes, base: str) -> Reply:
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if (form.get("grant_type") != "client_credentials" or form.get("client_id") != self.client_id
                or form.get("client_secret") != self.client_secret):
            return reply(400, {"error": "invalid_client", "error_description": "invalid client credentials"})
        self.tokens_issued += 1
        token = f"00Dfake!{self.tokens_issued:08d}"
        self._tokens[token] = self.clock.now() + self.token_ttl
        issued = int(self.clock.now().timestamp() * 1000)
        return reply(200, {
            "access_token": token, "instance_url": base, "id": f"{base}/id/00Dfake/005fake",
            "token_type": "Bearer", "issued_at": str(issued), "signature": "fake",
        })

    def _describe(self, sobject: str, headers: dict) -> Reply:
        fields = self.objects.get(sobject)
        if fields is None:
            return reply(404, _errors({"message": f"The requested resource does not exist", "errorCode": "NOT_FOUND"}))
        return reply(200, {"name": sobject, "fields": fields}, headers)

    def _read(self, sobject: str, rid: str, headers: dict) -> Reply:
        values = self.records.get((sobject, rid))
        if values is None:
            return reply(404, _errors({"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}))
        return reply(200, {"attributes": {"type": sobject}, "Id": rid, **values}, headers)

    def _field_error(self, sobject: str, field: dict | None, name: str, value: Any) -> dict | None:
        def err(code: str, message: str) -> dict:
            return {"statusCode": code, "message": message, "fields": [name]}

        if field is None:
            return err("INVALID_FIELD", f"No such column '{name}' on sobject of type {sobject}")
        if not field["updateable"]:
            return err("INVALID_FIELD_FOR_INSERT_UPDATE", f"Unable to create/update fields: {name}.")
        kind = field["type"]
        if value is None:
            return None
        if kind in ("double", "currency", "percent", "int") and (isinstance(value, bool) or not isinstance(value, (int, float))):
            return err("INVALID_TYPE_ON_FIELD_IN_RECORD", f"{name}: value not of required type: {value}")
        if kind == "boolean" and not isinstance(value, bool):
            return err("INVALID_TYPE_ON_FIELD_IN_RECORD", f"{name}: value not of required type: {value}")
        if kind == "date":
            try:
                date.fromisoformat(value)
            except (TypeError, ValueError):
                return err("INVALID_TYPE_ON_FIELD_IN_RECORD", f"{name}: value not of required type: {value}")
        if isinstance(value, str) and field.get("length") and len(value) > field["length"]:
            return err("STRING_TOO_LONG", f"{name}: data value too large: {value[:20]} (max length={field['length']})")
        if kind in ("picklist", "multipicklist") and field.get("restrictedPicklist"):
            allowed = {p["value"] for p in field["picklistValues"] if p.get("active", True)}
            chosen = value.split(";") if kind == "multipicklist" else [value]
            if not isinstance(value, str) or any(c not in allowed for c in chosen):
                return err("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", f"{name}: bad value for restricted picklist field: {value}")
        rule = self.validation_rules.get((sobject, field["name"]))
        message = rule(value) if rule else None
        if message:
            return err("FIELD_CUSTOM_VALIDATION_EXCEPTION", message)
        return None

    def _record_errors(self, record: dict, fault: str | None) -> list[dict]:
        sobject = (record.get("attributes") or {}).get("type")
        rid = str(record.get("id") or "")
        if sobject not in self.objects:
            return [{"statusCode": "INVALID_TYPE", "message": f"sObject type '{sobject}' is not supported.", "fields": []}]
        if not _ID.match(rid) or rid[:3] != SALESFORCE_PREFIXES.get(sobject, rid[:3]):
            return [{"statusCode": "MALFORMED_ID", "message": f"{sobject} ID: id value of incorrect type: {rid}", "fields": ["Id"]}]
        if rid in self.deleted_ids:
            return [{"statusCode": "ENTITY_IS_DELETED", "message": "entity is deleted", "fields": []}]
        if fault in _RECORD_FAULTS:
            code, message = _RECORD_FAULTS[fault]
            return [{"statusCode": code, "message": message, "fields": []}]
        by_name = {f["name"].lower(): f for f in self.objects[sobject]}
        errors = []
        for name, value in record.items():
            if name in ("attributes", "id"):
                continue
            error = self._field_error(sobject, by_name.get(name.lower()), name, value)
            if error:
                errors.append(error)
            field = by_name.get(name.lower())
            rule = self.top_of_page_rules.get((sobject, field["name"])) if field else None
            message = rule(value) if rule and not error else None
            if message:
                errors.append({"statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "message": message, "fields": []})
        return errors

    def _collections(self, body: bytes, headers: dict, *, record_fault: str | None):
        try:
            request = json.loads(body)
            records = request["records"]
        except (ValueError, KeyError, TypeError):
            return (*reply(400, _errors({"message": "Unexpected character", "errorCode": "JSON_PARSER_ERROR"})), [])
        if len(records) > 200:
            return (*reply(400, _errors({"message": "Record limit reached. Maximum is 200", "errorCode": "EXCEEDED_ID_LIMIT"})), [])
        results, applied = [], []
        for position, record in enumerate(records):
            # A record fault hits the first record only: the others go through.
            errors = self._record_errors(record, record_fault if position == 0 else None)
            rid = str(record.get("id") or "")
            if errors:
                results.append({"id": rid, "success": False, "errors": errors})
                continue
            sobject = record["attributes"]["type"]
            values = {k: v for k, v in record.items() if k not in ("attributes", "id")}
            canonical = {f["name"].lower(): f["name"] for f in self.objects[sobject]}
            values = {canonical[k.lower()]: v for k, v in values.items()}
            self.records.setdefault((sobject, rid), {}).update(values)
            applied += self.journal.add(sobject, rid, values)
            results.append({"id": rid, "success": True, "errors": []})
        return (*reply(200, results, headers), applied)
