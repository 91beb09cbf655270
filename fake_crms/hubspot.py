"""A fake HubSpot portal: `properties`, `batch/update` that fails a whole batch on one
invalid input (400 VALIDATION_ERROR), 207 for ids that do not exist, and the ten-second
rolling rate limit (429 TEN_SECONDLY_ROLLING, no Retry-After). `GET
/crm/v3/objects/{type}/{id}` reads a record's applied properties back (all of them).
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections import deque
from datetime import date, timedelta
from typing import Any

from siro_assets.simulator.clock import Clock
from .common import (
    DISCONNECT, LOST_RESPONSE, RATE_LIMIT, SERVER_ERROR, UNAVAILABLE, CrmFaults, Journal, LostResponse, Reply,
    bearer, reply,
)
from .schemas import HUBSPOT_OBJECTS

_PROPERTIES = re.compile(r"^/crm/v3/properties/([^/]+)$")
_BATCH = re.compile(r"^/crm/v3/objects/([^/]+)/batch/update$")
_RECORD = re.compile(r"^/crm/v3/objects/([^/]+)/([^/]+)$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
WINDOW = timedelta(seconds=10)


def _error(category: str, message: str, **extra) -> dict:
    return {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category, **extra}


class FakeHubSpot:
    """One fake portal. `records[(objectType, id)]` holds the applied properties (strings)."""

    def __init__(
        self,
        clock: Clock,
        *,
        token: str = "fake-hubspot-token",
        objects: dict[str, list[dict]] | None = None,
        missing_ids: set[str] | None = None,
        requests_per_window: int = 100,
        validation_rules: dict[tuple[str, str], Any] | None = None,
        faults: CrmFaults | None = None,
    ) -> None:
        self.clock = clock
        self.token = token
        self.objects = objects or HUBSPOT_OBJECTS
        self.missing_ids = set(missing_ids or ())
        self.requests_per_window = requests_per_window
        self.validation_rules = validation_rules or {}
        """(objectType, property) -> callable(value) returning an error message or None."""
        self.faults = faults or CrmFaults()
        self.records: dict[tuple[str, str], dict[str, str]] = {}
        self.journal = Journal()
        self.requests: list[tuple[str, str, int]] = []
        """(method, path, number of inputs) per request."""
        self.rate_limited = 0
        self._recent: deque = deque()
        self._lock = threading.Lock()

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes, base: str) -> Reply:
        """Answer one request."""
        with self._lock:
            inputs = 0
            if method == "POST":
                try:
                    inputs = len(json.loads(body).get("inputs") or [])
                except (ValueError, AttributeError):
                    inputs = 0
            self.requests.append((method, path, inputs))
            if bearer(headers) != self.token:
                return reply(401, _error("INVALID_AUTHENTICATION", "Authentication credentials not found."))
            now = self.clock.now()
            while self._recent and self._recent[0] <= now - WINDOW:
                self._recent.popleft()
            fault = self.faults.next((SERVER_ERROR, UNAVAILABLE, DISCONNECT, LOST_RESPONSE, RATE_LIMIT))
            if len(self._recent) >= self.requests_per_window or fault == RATE_LIMIT:
                self.rate_limited += 1
                return reply(429, {
                    "status": "error", "message": "You have reached your ten_secondly_rolling limit.",
                    "errorType": "RATE_LIMIT", "correlationId": str(uuid.uuid4()),
                    "policyName": "TEN_SECONDLY_ROLLING",
                })
            self._recent.append(now)
            if fault in (SERVER_ERROR, UNAVAILABLE):
                return reply(500 if fault == SERVER_ERROR else 503, _error("INTERNAL_ERROR", "simulated outage"))
            if fault == DISCONNECT:
                raise LostResponse(applied=False)
            if method == "GET" and (m := _PROPERTIES.match(path)):
                fields = self.objects.get(m.group(1))
                if fields is None:
                    return reply(404, _error("OBJECT_NOT_FOUND", f"Unable to infer object type from: {m.group(1)}"))
                return reply(200, {"results": fields})
            if method == "GET" and (m := _RECORD.match(path)):
                values = self.records.get((m.group(1), m.group(2)))
                if values is None:
                    return reply(404, _error("OBJECT_NOT_FOUND", "Object not found."))
                return reply(200, {"id": m.group(2), "properties": values, "archived": False})
            if method == "POST" and (m := _BATCH.match(path)):
                status, out_headers, content, applied = self._batch_update(m.group(1), body)
                if fault == LOST_RESPONSE:
                    raise LostResponse(applied=True)
                Journal.acknowledge(applied)
                return status, out_headers, content
            return reply(404, _error("NOT_FOUND", "Not found"))

    def _invalid(self, object_type: str, prop: dict | None, name: str, value: Any) -> dict | None:
        def bad(error: str, message: str) -> dict:
            return {"isValid": False, "message": message, "error": error, "name": name}

        if prop is None:
            return bad("PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
        if (prop.get("modificationMetadata") or {}).get("readOnlyValue"):
            return bad("READ_ONLY_VALUE", f"{name} is a read only property; its value cannot be set.")
        if not isinstance(value, str):
            return bad("INVALID_TYPE", f"{value!r} is not a string")
        if value == "":
            return None
        kind = prop["type"]
        if kind == "number" and not _NUMBER.match(value):
            return bad("INVALID_INTEGER", f"{value} was not a valid number.")
        if kind == "bool" and value not in ("true", "false"):
            return bad("INVALID_BOOLEAN", f"{value} was not a valid boolean.")
        if kind == "date":
            try:
                date.fromisoformat(value)
            except ValueError:
                return bad("INVALID_DATE", f"{value} was not a valid date.")
        if kind == "enumeration":
            allowed = {str(o["value"]) for o in prop.get("options") or []}
            chosen = value.split(";") if prop.get("fieldType") == "checkbox" else [value]
            if any(c not in allowed for c in chosen):
                return bad("INVALID_OPTION", f'{value} was not one of the allowed options: {sorted(allowed)}')
        rule = self.validation_rules.get((object_type, name))
        message = rule(value) if rule else None
        return bad("VALIDATION_RULE", message) if message else None

    def _batch_update(self, object_type: str, body: bytes):
        props = {p["name"]: p for p in self.objects.get(object_type, [])}
        if object_type not in self.objects:
            return (*reply(400, _error("VALIDATION_ERROR", f"Unable to infer object type from: {object_type}")), [])
        try:
            inputs = json.loads(body)["inputs"]
        except (ValueError, KeyError, TypeError):
            return (*reply(400, _error("VALIDATION_ERROR", "Invalid input JSON")), [])
        ids = [str(i.get("id")) for i in inputs]
        if len(inputs) > 100:
            return (*reply(400, _error("VALIDATION_ERROR", "Batch size exceeds the limit of 100")), [])
        if len(set(ids)) != len(ids):
            return (*reply(400, _error("VALIDATION_ERROR", "Duplicate IDs found in batch input")), [])
        problems = [
            problem
            for item in inputs
            for name, value in (item.get("properties") or {}).items()
            if (problem := self._invalid(object_type, props.get(name), name, value))
        ]
        if problems:
            # One invalid input fails the whole batch.
            return (*reply(400, _error("VALIDATION_ERROR", f"Property values were not valid: {json.dumps(problems)}")), [])
        now = self.clock.now().isoformat().replace("+00:00", "Z")
        results, applied, missing = [], [], []
        for item in inputs:
            rid = str(item["id"])
            if rid in self.missing_ids:
                missing.append(rid)
                continue
            values = dict(item.get("properties") or {})
            self.records.setdefault((object_type, rid), {}).update(values)
            applied += self.journal.add(object_type, rid, values)
            results.append({"id": rid, "properties": values, "createdAt": now, "updatedAt": now, "archived": False})
        answer = {"status": "COMPLETE", "results": results, "startedAt": now, "completedAt": now}
        if missing:
            answer.update(numErrors=1, errors=[{
                "status": "error", "category": "OBJECT_NOT_FOUND", "message": "Could not get some objects, they may be deleted or not exist.",
                "context": {"ids": missing},
            }])
            return (*reply(207, answer), applied)
        return (*reply(200, answer), applied)
