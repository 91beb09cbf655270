"""Request handling for the simulated Siro External API (transport-agnostic).

:class:`SimulatorApi` turns ``(method, path, query, headers)`` into ``(status, headers, body)``.
The in-process :mod:`transport` and the HTTP :mod:`server` are thin adapters around it, so the
same code answers unit tests, async clients and the dagster end-to-end runs. Parameter parsing
and cursors live in :mod:`.request_params`, fault injection in :mod:`.faults`.
"""

from __future__ import annotations

import collections
import hashlib
import json
import threading
import time
from typing import Any, Callable, Mapping, Sequence

from .clock import Clock, format_ms, to_ms
from .faults import FAULT_KINDS, FaultConfig, FaultInjector, SimulatedDisconnect
from .request_params import (
    BadRequest,
    ListQuery,
    decode_cursor,
    encode_cursor,
    enrichment,
    midnight,
    page_size,
    parse_list_query,
)
from .timeline import BaseRecording
from .world import World

__all__ = ["SimulatorApi", "FaultConfig", "SimulatedDisconnect", "FAULT_KINDS"]

_ERROR_TEXT = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
_JSON_HEADERS = {"content-type": "application/json; charset=utf-8"}
# Listings in flight whose matching set is kept between pages. Entries are lists of
# references into the world's per-day cache, so they are cheap; too few, and a backfill
# paging many windows round-robin would rebuild every listing on every page (O(N^2)).
_CACHE_SIZE = 1024

Response = tuple[int, dict[str, str], bytes]


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _error(status: int, message: str) -> Response:
    return status, dict(_JSON_HEADERS), _dumps({"error": message, "message": message, "statusCode": status})


class SimulatorApi:
    """The simulated API: routing, auth, filters, cursors, rate limiting and fault injection.

    ``handle`` is thread-safe. Counters: ``request_count`` (every call), ``fault_count`` (by kind:
    ``"429"``, ``"500"``, ``"502"``, ``"503"``, ``"disconnect"``, ``"truncate"``; rate-limit
    rejections count as ``"429"`` too) and ``rate_limited_count``.
    """

    def __init__(
        self,
        world: World,
        clock: Clock,
        *,
        token: str | None = None,
        page_size_cap: int = 100,
        faults: FaultConfig | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``token=None`` accepts any non-empty bearer token. ``monotonic`` drives the rate-limit
        window (real request pacing, independent of the simulated clock); tests may inject one.
        ``sleep`` is how the in-process transport waits ``faults.latency`` before an answer: a
        test injects a fake clock's ``sleep`` to get the latency without waiting for it."""
        if page_size_cap < 1:
            raise ValueError("page_size_cap must be >= 1")
        self.world = world
        self.clock = clock
        self.token = token
        self.page_size_cap = page_size_cap
        self.faults = faults or FaultConfig()
        self.sleep = sleep
        self._injector = FaultInjector(self.faults, monotonic)
        self._lock = threading.Lock()
        self._cache: collections.OrderedDict[tuple[str, int], list[BaseRecording]] = collections.OrderedDict()
        self.request_count = 0

    @property
    def fault_count(self) -> dict[str, int]:
        """Injected faults so far, by kind."""
        return self._injector.fault_count

    @property
    def rate_limited_count(self) -> int:
        """Requests rejected by the per-token rate limit so far."""
        return self._injector.rate_limited_count

    def script_faults(self, kinds: Sequence[str]) -> None:
        """Queue faults for the next requests, consumed in order before any random fault.

        ``"ok"`` forces one normal response (no random fault for that request).
        """
        self._injector.script(kinds)

    # ---- entry point --------------------------------------------------------------------
    def handle(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]],
        headers: Mapping[str, str],
    ) -> Response:
        """Answer one request. ``path`` is relative to the API base URL (``/v1/core/...``).

        Returns ``(status, headers, body)``; raises :class:`SimulatedDisconnect` for a
        ``disconnect`` fault.
        """
        with self._lock:
            self.request_count += 1
        fault = self._injector.next_fault()
        if fault == "disconnect":
            raise SimulatedDisconnect("simulated connection drop")
        if fault in ("429", "500", "502", "503"):
            status = int(fault)
            return _error(status, f"{_ERROR_TEXT[status]} (simulated)")

        status, out_headers, body = self._handle_normal(method, path, query, headers)
        if fault == "truncate":
            body = body[: len(body) // 2]
        return status, out_headers, body

    def _handle_normal(self, method, path, query, headers) -> Response:
        token = self._bearer(headers)
        if not token:
            return _error(401, "Missing bearer token: send 'Authorization: Bearer <organization-api-token>'")
        if self.token is not None and token != self.token:
            return _error(401, "Invalid API token")
        if self._injector.rate_limited(token):
            return _error(429, "Rate limit exceeded")

        parts = [p for p in path.split("?", 1)[0].split("/") if p]
        params: dict[str, str] = {}
        for k, v in query:
            params.setdefault(k, v)
        try:
            if parts[:2] != ["v1", "core"]:
                return _error(404, f"No route for {path}")
            rest = parts[2:]
            route: Callable[[], Response] | None = None
            if rest == ["recordings"]:
                route = lambda: self._list(params)  # noqa: E731
            elif len(rest) == 2 and rest[0] == "recordings":
                route = lambda: self._get(rest[1], params)  # noqa: E731
            elif len(rest) == 3 and rest[0] == "recordings" and rest[2] == "summaries":
                route = lambda: self._summaries(rest[1])  # noqa: E731
            elif rest == ["auth", "caller-identity"]:
                route = lambda: self._caller_identity(token)  # noqa: E731
            if route is None:
                return _error(404, f"No route for {path}")
            if method.upper() not in ("GET", "HEAD"):
                return _error(405, f"{method} not allowed on {path}")
            return route()
        except BadRequest as e:
            return _error(400, str(e))

    @staticmethod
    def _bearer(headers: Mapping[str, str]) -> str:
        value = ""
        for k, v in headers.items():
            if k.lower() == "authorization":
                value = v
                break
        scheme, _, cred = value.strip().partition(" ")
        if scheme.lower() != "bearer":
            return ""
        return cred.strip()

    # ---- listing ------------------------------------------------------------------------
    def _matching(self, q: ListQuery, snap: int) -> list[BaseRecording]:
        key = (q.digest(), snap)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        world = self.world
        first, last = q.day_range(world.config.start_date, world.max_delay_ms, snap)
        rows: list[tuple[int, str, BaseRecording]] = []
        for d in world.iter_days(first, last):
            for r in world.day(d):
                if r.created > snap:
                    break  # days are sorted by createdAt
                sort_key = q.sort_key(r, snap)
                if sort_key is not None:
                    rows.append((sort_key, r.id, r))
        rows.sort(key=lambda x: (x[0], x[1]))
        result = [r for _, _, r in rows]
        with self._lock:
            self._cache[key] = result
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return result

    def _list(self, params: Mapping[str, str]) -> Response:
        q = parse_list_query(params)
        size = page_size(params, self.page_size_cap)
        qhash = q.digest()
        cursor = params.get("cursor")
        if cursor:
            snap, offset = decode_cursor(cursor, qhash)
        else:
            snap, offset = to_ms(self.clock.now()), 0
        rows = self._matching(q, snap)
        page = rows[offset : offset + size]
        nxt = offset + len(page)
        data = [self.world.payload(r, snap, q.enrich) for r in page]
        body = {"data": data, "cursor": encode_cursor(snap, nxt, qhash) if nxt < len(rows) else None}
        return 200, dict(_JSON_HEADERS), _dumps(body)

    # ---- single recording ---------------------------------------------------------------
    def _existing(self, rid: str) -> tuple[BaseRecording, int] | None:
        now = to_ms(self.clock.now())
        r = self.world.base(rid)
        if r is None or r.created > now:
            return None
        return r, now

    def _get(self, rid: str, params: Mapping[str, str]) -> Response:
        enrich = enrichment(params)
        found = self._existing(rid)
        if found is None:
            return _error(404, f"Recording {rid} not found")
        r, now = found
        return 200, dict(_JSON_HEADERS), _dumps(self.world.payload(r, now, enrich, detailed_followups=True))

    def _summaries(self, rid: str) -> Response:
        found = self._existing(rid)
        if found is None:
            return _error(404, f"Recording {rid} not found")
        r, now = found
        return 200, dict(_JSON_HEADERS), _dumps(self.world.payload(r, now, ("summary",))["summary"])

    def _caller_identity(self, token: str) -> Response:
        cfg = self.world.config
        created = to_ms(midnight(cfg.start_date)) - 30 * 86_400_000
        body = {
            "tokenId": "tok_" + hashlib.blake2b(token.encode(), digest_size=6).hexdigest(),
            "tokenName": "Simulator integration token",
            "organizationId": cfg.organization_id,
            "authorizedOrgGroupId": None,
            "parentOrgGroupTokenId": None,
            "createdAt": format_ms(created),
            "createdBy": "usr_sim_admin",
        }
        return 200, dict(_JSON_HEADERS), _dumps(body)
