"""Request handling for the simulated Siro External API (transport-agnostic).

:class:`SimulatorApi` turns ``(method, path, query, headers)`` into ``(status, headers, body)``.
The in-process :mod:`transport` and the HTTP :mod:`server` are thin adapters around it, so the
same code answers unit tests, async clients and the dagster end-to-end runs.
"""

from __future__ import annotations

import base64
import binascii
import collections
import hashlib
import json
import random
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Callable, Mapping, Sequence

from .clock import Clock, format_ms, from_ms, parse_iso, to_ms, to_us
from .world import BaseRecording, World

__all__ = ["SimulatorApi", "FaultConfig", "SimulatedDisconnect", "FAULT_KINDS"]

#: Values accepted by :meth:`SimulatorApi.script_faults`.
FAULT_KINDS = ("429", "500", "502", "503", "disconnect", "truncate", "ok")

_TS_PARAMS = ("createdAt:gt", "createdAt:lt", "updatedAt:gte", "updatedAt:gt", "updatedAt:lt", "updatedAt:lte")
_FILTER_BOOLS = {"isProcessingDone": "processed", "isEntityExtractionDone": "extracted", "isSummaryDone": "summarized"}
_SHOW_FLAGS = {
    "showCrmLinks": "crm",
    "showSummary": "summary",
    "showEntityExtractions": "entityExtractions",
    "showEvaluationScore": "evaluationScore",
    "showFollowups": "followups",
}
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
_DEFAULT_PAGE_SIZE = 25
# Listings in flight whose matching set is kept between pages. Entries are lists of
# references into the world's per-day cache, so they are cheap; too few, and a backfill
# paging many windows round-robin would rebuild every listing on every page (O(N^2)).
_CACHE_SIZE = 1024


class SimulatedDisconnect(Exception):
    """Raised by :meth:`SimulatorApi.handle` when the connection should drop with no response.

    The transport maps it to ``httpx.RemoteProtocolError``; the server aborts the connection.
    """


@dataclass(frozen=True)
class FaultConfig:
    """Random and rate-limit faults. Rates are per-request probabilities; ``latency`` is seconds.

    Random faults come from ``random.Random(seed)``, so a run with the same request sequence sees
    the same faults.
    """

    rate_limit_per_minute: int | None = None
    error_rate: float = 0.0
    disconnect_rate: float = 0.0
    truncate_rate: float = 0.0
    latency: float = 0.0
    seed: int = 0


class _BadRequest(Exception):
    pass


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _error(status: int, message: str) -> tuple[int, dict[str, str], bytes]:
    return status, dict(_JSON_HEADERS), _dumps({"error": message, "message": message, "statusCode": status})


@dataclass(frozen=True)
class _ListQuery:
    created_gt: int | None  # microseconds since epoch
    created_lt: int | None
    updated_gte: int | None
    updated_gt: int | None
    updated_lt: int | None
    updated_lte: int | None
    flags: tuple[tuple[str, bool], ...]  # (event kind, wanted) for the is*Done filters
    enrich: tuple[str, ...]

    @property
    def by_updated(self) -> bool:
        return any(v is not None for v in (self.updated_gte, self.updated_gt, self.updated_lt, self.updated_lte))

    def digest(self) -> str:
        return hashlib.blake2b(repr(self).encode(), digest_size=8).hexdigest()


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
    ) -> None:
        """``token=None`` accepts any non-empty bearer token. ``monotonic`` drives the rate-limit
        window (real request pacing, independent of the simulated clock); tests may inject one."""
        if page_size_cap < 1:
            raise ValueError("page_size_cap must be >= 1")
        self.world = world
        self.clock = clock
        self.token = token
        self.page_size_cap = page_size_cap
        self.faults = faults or FaultConfig()
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._rng = random.Random(self.faults.seed)
        self._script: collections.deque[str] = collections.deque()
        self._windows: dict[str, collections.deque[float]] = {}
        self._cache: collections.OrderedDict[tuple[str, int], list[BaseRecording]] = collections.OrderedDict()
        self.request_count = 0
        self.fault_count: dict[str, int] = {}
        self.rate_limited_count = 0

    # ---- faults -------------------------------------------------------------------------
    def script_faults(self, kinds: Sequence[str]) -> None:
        """Queue faults for the next requests, consumed in order before any random fault.

        ``"ok"`` forces one normal response (no random fault for that request).
        """
        bad = [k for k in kinds if k not in FAULT_KINDS]
        if bad:
            raise ValueError(f"unknown fault kinds {bad}; expected some of {FAULT_KINDS}")
        with self._lock:
            self._script.extend(kinds)

    def _next_fault(self) -> str | None:
        # Called with the lock held.
        if self._script:
            kind = self._script.popleft()
            return None if kind == "ok" else kind
        f = self.faults
        total = f.error_rate + f.disconnect_rate + f.truncate_rate
        if total <= 0:
            return None
        u = self._rng.random()
        if u < f.error_rate:
            return self._rng.choice(["429", "500", "502", "503"])
        if u < f.error_rate + f.disconnect_rate:
            return "disconnect"
        if u < total:
            return "truncate"
        return None

    def _count_fault(self, kind: str) -> None:
        self.fault_count[kind] = self.fault_count.get(kind, 0) + 1

    def _rate_limited(self, token: str) -> bool:
        limit = self.faults.rate_limit_per_minute
        if not limit:
            return False
        now = self._monotonic()
        with self._lock:
            window = self._windows.setdefault(token, collections.deque())
            while window and window[0] <= now - 60.0:
                window.popleft()
            if len(window) >= limit:
                self.rate_limited_count += 1
                self._count_fault("429")
                return True
            window.append(now)
            return False

    # ---- entry point --------------------------------------------------------------------
    def handle(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]],
        headers: Mapping[str, str],
    ) -> tuple[int, dict[str, str], bytes]:
        """Answer one request. ``path`` is relative to the API base URL (``/v1/core/...``).

        Returns ``(status, headers, body)``; raises :class:`SimulatedDisconnect` for a
        ``disconnect`` fault.
        """
        with self._lock:
            self.request_count += 1
            fault = self._next_fault()
            if fault is not None:
                self._count_fault(fault)
        if fault == "disconnect":
            raise SimulatedDisconnect("simulated connection drop")
        if fault in ("429", "500", "502", "503"):
            status = int(fault)
            return _error(status, f"{_ERROR_TEXT[status]} (simulated)")

        status, out_headers, body = self._handle_normal(method, path, query, headers)
        if fault == "truncate":
            body = body[: len(body) // 2]
        return status, out_headers, body

    def _handle_normal(self, method, path, query, headers) -> tuple[int, dict[str, str], bytes]:
        token = self._bearer(headers)
        if not token:
            return _error(401, "Missing bearer token: send 'Authorization: Bearer <organization-api-token>'")
        if self.token is not None and token != self.token:
            return _error(401, "Invalid API token")
        if self._rate_limited(token):
            return _error(429, "Rate limit exceeded")

        parts = [p for p in path.split("?", 1)[0].split("/") if p]
        params: dict[str, str] = {}
        for k, v in query:
            params.setdefault(k, v)
        try:
            if parts[:2] != ["v1", "core"]:
                return _error(404, f"No route for {path}")
            rest = parts[2:]
            route: Callable[[], tuple[int, dict[str, str], bytes]] | None = None
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
        except _BadRequest as e:
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

    # ---- parameter parsing -------------------------------------------------------------
    @staticmethod
    def _bool(params: Mapping[str, str], name: str) -> bool | None:
        v = params.get(name)
        if v is None:
            return None
        if v == "true":
            return True
        if v == "false":
            return False
        raise _BadRequest(f"Invalid value for '{name}': {v!r} (expected 'true' or 'false')")

    def _enrich(self, params: Mapping[str, str]) -> tuple[str, ...]:
        return tuple(block for name, block in _SHOW_FLAGS.items() if self._bool(params, name))

    def _parse_list_query(self, params: Mapping[str, str]) -> _ListQuery:
        ts: dict[str, int | None] = {}
        for name in _TS_PARAMS:
            v = params.get(name)
            if v is None:
                ts[name] = None
                continue
            try:
                ts[name] = to_us(parse_iso(v))
            except (ValueError, TypeError, OverflowError):
                raise _BadRequest(
                    f"Invalid value for '{name}': {v!r} (expected an ISO 8601 timestamp like 2024-06-13T04:00:00.592Z)"
                ) from None
        flags = []
        for name, kind in _FILTER_BOOLS.items():
            b = self._bool(params, name)
            if b is not None:
                flags.append((kind, b))
        return _ListQuery(
            created_gt=ts["createdAt:gt"],
            created_lt=ts["createdAt:lt"],
            updated_gte=ts["updatedAt:gte"],
            updated_gt=ts["updatedAt:gt"],
            updated_lt=ts["updatedAt:lt"],
            updated_lte=ts["updatedAt:lte"],
            flags=tuple(flags),
            enrich=self._enrich(params),
        )

    def _page_size(self, params: Mapping[str, str]) -> int:
        v = params.get("pageSize")
        if v is None:
            return min(_DEFAULT_PAGE_SIZE, self.page_size_cap)
        try:
            n = int(v.strip())
        except ValueError:
            raise _BadRequest(f"Invalid value for 'pageSize': {v!r} (expected a positive integer)") from None
        if n < 1:
            raise _BadRequest(f"Invalid value for 'pageSize': {v!r} (expected a positive integer)")
        # The real maximum is undocumented; we silently cap like a server would.
        return min(n, self.page_size_cap)

    # ---- cursors ------------------------------------------------------------------------
    @staticmethod
    def _encode_cursor(snapshot_ms: int, offset: int, qhash: str) -> str:
        raw = json.dumps({"v": 1, "t": snapshot_ms, "o": offset, "q": qhash}, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @staticmethod
    def _decode_cursor(cursor: str, qhash: str) -> tuple[int, int]:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            data = json.loads(raw)
            snap, offset, q = data["t"], data["o"], data["q"]
            if not (isinstance(snap, int) and isinstance(offset, int) and offset >= 0 and isinstance(q, str)):
                raise ValueError
        except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
            raise _BadRequest("Invalid value for 'cursor': not a cursor returned by this endpoint") from None
        if q != qhash:
            raise _BadRequest("Invalid value for 'cursor': it belongs to a different query (filters changed)")
        return snap, offset

    # ---- listing ------------------------------------------------------------------------
    def _matching(self, q: _ListQuery, snap: int) -> list[BaseRecording]:
        key = (q.digest(), snap)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        world = self.world
        first = world.config.start_date
        last = from_ms(snap).date()
        lower_upd = max((v for v in (q.updated_gte, q.updated_gt) if v is not None), default=None)
        start_ms = to_ms(_midnight(first))
        if lower_upd is not None:
            # Every event falls within max_event_delay of creation, so anything updated at or
            # after the bound was created no earlier than bound - max_event_delay.
            first = max(first, from_ms(max(start_ms, lower_upd // 1000 - world.max_delay_ms)).date())
        if q.created_gt is not None:
            first = max(first, from_ms(max(start_ms, q.created_gt // 1000)).date())
        if q.created_lt is not None:
            last = min(last, from_ms(max(start_ms - 1, (q.created_lt - 1) // 1000)).date())
        upper_upd = min((v for v in (q.updated_lt, q.updated_lte) if v is not None), default=None)
        if upper_upd is not None:
            last = min(last, from_ms(max(start_ms - 1, upper_upd // 1000)).date())

        rows: list[tuple[int, str, BaseRecording]] = []
        for d in world.iter_days(first, last):
            for r in world.day(d):
                if r.created > snap:
                    break  # days are sorted by createdAt
                c = r.created * 1000
                if q.created_gt is not None and not c > q.created_gt:
                    continue
                if q.created_lt is not None and not c < q.created_lt:
                    continue
                u_ms = r.updated_ms(snap)
                u = u_ms * 1000
                if q.updated_gte is not None and not u >= q.updated_gte:
                    continue
                if q.updated_gt is not None and not u > q.updated_gt:
                    continue
                if q.updated_lt is not None and not u < q.updated_lt:
                    continue
                if q.updated_lte is not None and not u <= q.updated_lte:
                    continue
                if any(r.has(kind, snap) != want for kind, want in q.flags):
                    continue
                rows.append((u_ms if q.by_updated else r.created, r.id, r))
        rows.sort(key=lambda x: (x[0], x[1]))
        result = [r for _, _, r in rows]
        with self._lock:
            self._cache[key] = result
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return result

    def _list(self, params: Mapping[str, str]) -> tuple[int, dict[str, str], bytes]:
        q = self._parse_list_query(params)
        size = self._page_size(params)
        qhash = q.digest()
        cursor = params.get("cursor")
        if cursor:
            snap, offset = self._decode_cursor(cursor, qhash)
        else:
            snap, offset = to_ms(self.clock.now()), 0
        rows = self._matching(q, snap)
        page = rows[offset : offset + size]
        nxt = offset + len(page)
        data = [self.world.payload(r, snap, q.enrich) for r in page]
        body = {"data": data, "cursor": self._encode_cursor(snap, nxt, qhash) if nxt < len(rows) else None}
        return 200, dict(_JSON_HEADERS), _dumps(body)

    # ---- single recording ---------------------------------------------------------------
    def _existing(self, rid: str) -> tuple[BaseRecording, int] | None:
        now = to_ms(self.clock.now())
        r = self.world.base(rid)
        if r is None or r.created > now:
            return None
        return r, now

    def _get(self, rid: str, params: Mapping[str, str]) -> tuple[int, dict[str, str], bytes]:
        enrich = self._enrich(params)
        found = self._existing(rid)
        if found is None:
            return _error(404, f"Recording {rid} not found")
        r, now = found
        return 200, dict(_JSON_HEADERS), _dumps(self.world.payload(r, now, enrich, detailed_followups=True))

    def _summaries(self, rid: str) -> tuple[int, dict[str, str], bytes]:
        found = self._existing(rid)
        if found is None:
            return _error(404, f"Recording {rid} not found")
        r, now = found
        return 200, dict(_JSON_HEADERS), _dumps(self.world.payload(r, now, ("summary",))["summary"])

    def _caller_identity(self, token: str) -> tuple[int, dict[str, str], bytes]:
        cfg = self.world.config
        created = to_ms(_midnight(cfg.start_date)) - 30 * 86_400_000
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


def _midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=timezone.utc)
