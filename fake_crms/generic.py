"""A fake generic CRM endpoint: `PATCH /{model}/{externalId}` with a JSON object of field
-> value, a bearer token, and `Idempotency-Key` replay (a key seen before gets the first
answer again and changes nothing).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from siro_assets.simulator.clock import Clock
from .common import DISCONNECT, LOST_RESPONSE, SERVER_ERROR, UNAVAILABLE, CrmFaults, Journal, LostResponse, Reply, bearer, reply


class FakeHttpCrm:
    """Records are `records[(model, id)]`; `invalid(model, id, field, value)` may refuse a value (422)."""

    def __init__(
        self,
        clock: Clock,
        *,
        token: str | None = "fake-http-token",
        invalid: Callable[[str, str, str, Any], str | None] | None = None,
        faults: CrmFaults | None = None,
    ) -> None:
        self.clock = clock
        self.token = token
        self.invalid = invalid
        self.faults = faults or CrmFaults()
        self.records: dict[tuple[str, str], dict[str, Any]] = {}
        self.journal = Journal()
        self.requests: list[dict] = []
        """method, raw path, decoded (model, id), idempotency key, body per request."""
        self._answers: dict[str, Reply] = {}
        self._lock = threading.Lock()

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes, base: str) -> Reply:
        """Answer one request; `path` is still URL-encoded."""
        with self._lock:
            segments = path.strip("/").split("/")
            key = headers.get("idempotency-key")
            decoded = tuple(unquote(s) for s in segments)
            self.requests.append({"method": method, "path": path, "target": decoded, "key": key, "body": body})
            if self.token is not None and bearer(headers) != self.token:
                return reply(401, {"error": "unauthorized", "message": "bad or missing bearer token"})
            if method != "PATCH" or len(segments) != 2:
                return reply(404, {"error": "not_found", "message": "PATCH /{model}/{externalId}"})
            if key and key in self._answers:
                return self._answers[key]
            fault = self.faults.next((SERVER_ERROR, UNAVAILABLE, DISCONNECT, LOST_RESPONSE))
            if fault in (SERVER_ERROR, UNAVAILABLE):
                return reply(500 if fault == SERVER_ERROR else 503, {"error": "unavailable", "message": "simulated outage"})
            if fault == DISCONNECT:
                raise LostResponse(applied=False)
            try:
                values = json.loads(body)
                assert isinstance(values, dict)
            except (ValueError, AssertionError):
                return reply(400, {"error": "bad_request", "message": "body must be a JSON object"})
            model, rid = decoded
            for name, value in values.items():
                message = self.invalid(model, rid, name, value) if self.invalid else None
                if message:
                    answer = reply(422, {"error": "invalid_value", "message": message, "field": name})
                    if key:
                        self._answers[key] = answer
                    return answer
            self.records.setdefault((model, rid), {}).update(values)
            applied = self.journal.add(model, rid, values, key)
            answer = reply(200, {"id": rid, "model": model, "updated": sorted(values)})
            if key:
                self._answers[key] = answer
            if fault == LOST_RESPONSE:
                raise LostResponse(applied=True)
            Journal.acknowledge(applied)
            return answer
