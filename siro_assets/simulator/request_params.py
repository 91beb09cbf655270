"""Query parameters of the simulated API: parsing, the list filters, page size and cursors.

Everything here is strict the way a server is: a value it cannot read is a
:class:`BadRequest` (HTTP 400) naming the parameter, never a silent default.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Mapping

from .clock import from_ms, parse_iso, to_ms, to_us
from .timeline import BaseRecording

__all__ = [
    "BadRequest",
    "ListQuery",
    "decode_cursor",
    "encode_cursor",
    "enrichment",
    "midnight",
    "page_size",
    "parse_bool",
    "parse_list_query",
]

_TS_PARAMS = ("createdAt:gt", "createdAt:lt", "updatedAt:gte", "updatedAt:gt", "updatedAt:lt", "updatedAt:lte")
_FILTER_BOOLS = {"isProcessingDone": "processed", "isEntityExtractionDone": "extracted", "isSummaryDone": "summarized"}
_SHOW_FLAGS = {
    "showCrmLinks": "crm",
    "showSummary": "summary",
    "showEntityExtractions": "entityExtractions",
    "showEvaluationScore": "evaluationScore",
    "showFollowups": "followups",
}
_DEFAULT_PAGE_SIZE = 25


class BadRequest(Exception):
    """A parameter the server cannot accept; the message is the 400 body's text."""


def midnight(d: date) -> datetime:
    """00:00 UTC of ``d``."""
    return datetime(d.year, d.month, d.day, tzinfo=timezone.utc)


@dataclass(frozen=True)
class ListQuery:
    """The filters of one ``GET /v1/core/recordings`` listing (timestamps in microseconds)."""

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
        """Whether the listing is ordered by ``updatedAt`` (any updatedAt filter) or ``createdAt``."""
        return any(v is not None for v in (self.updated_gte, self.updated_gt, self.updated_lt, self.updated_lte))

    def digest(self) -> str:
        """A short stable hash of the filters; a cursor carries it to refuse a changed query."""
        return hashlib.blake2b(repr(dataclasses.astuple(self)).encode(), digest_size=8).hexdigest()

    def day_range(self, start_date: date, max_delay_ms: int, snap: int) -> tuple[date, date]:
        """The creation days that can hold a match at ``snap`` (ms), given the world's start
        and its bound on how long after creation an event can happen."""
        first = start_date
        last = from_ms(snap).date()
        lower_upd = max((v for v in (self.updated_gte, self.updated_gt) if v is not None), default=None)
        start_ms = to_ms(midnight(first))
        if lower_upd is not None:
            # Every event falls within max_event_delay of creation, so anything updated at or
            # after the bound was created no earlier than bound - max_event_delay.
            first = max(first, from_ms(max(start_ms, lower_upd // 1000 - max_delay_ms)).date())
        if self.created_gt is not None:
            first = max(first, from_ms(max(start_ms, self.created_gt // 1000)).date())
        if self.created_lt is not None:
            last = min(last, from_ms(max(start_ms - 1, (self.created_lt - 1) // 1000)).date())
        upper_upd = min((v for v in (self.updated_lt, self.updated_lte) if v is not None), default=None)
        if upper_upd is not None:
            last = min(last, from_ms(max(start_ms - 1, upper_upd // 1000)).date())
        return first, last

    def sort_key(self, r: BaseRecording, snap: int) -> int | None:
        """``r``'s ordering time (ms) if it matches at ``snap``, else None."""
        c = r.created * 1000
        if self.created_gt is not None and not c > self.created_gt:
            return None
        if self.created_lt is not None and not c < self.created_lt:
            return None
        if self.flags and any(r.has(kind, snap) != want for kind, want in self.flags):
            return None
        if not self.by_updated and self.updated_gte is None and self.updated_gt is None \
                and self.updated_lt is None and self.updated_lte is None:
            # A createdAt-only listing: skip working out updatedAt (the costly part when a
            # new query scans days of recordings).
            return r.created
        u_ms = r.updated_ms(snap)
        u = u_ms * 1000
        if self.updated_gte is not None and not u >= self.updated_gte:
            return None
        if self.updated_gt is not None and not u > self.updated_gt:
            return None
        if self.updated_lt is not None and not u < self.updated_lt:
            return None
        if self.updated_lte is not None and not u <= self.updated_lte:
            return None
        return u_ms if self.by_updated else r.created


def parse_bool(params: Mapping[str, str], name: str) -> bool | None:
    """``"true"`` / ``"false"`` (the only spellings the API takes), None when absent."""
    v = params.get(name)
    if v is None:
        return None
    if v == "true":
        return True
    if v == "false":
        return False
    raise BadRequest(f"Invalid value for '{name}': {v!r} (expected 'true' or 'false')")


def enrichment(params: Mapping[str, str]) -> tuple[str, ...]:
    """The payload blocks the ``show*`` flags ask for."""
    return tuple(block for name, block in _SHOW_FLAGS.items() if parse_bool(params, name))


def parse_list_query(params: Mapping[str, str]) -> ListQuery:
    """The list filters in ``params``; :class:`BadRequest` for an unreadable one."""
    ts: dict[str, int | None] = {}
    for name in _TS_PARAMS:
        v = params.get(name)
        if v is None:
            ts[name] = None
            continue
        try:
            ts[name] = to_us(parse_iso(v))
        except (ValueError, TypeError, OverflowError):
            raise BadRequest(
                f"Invalid value for '{name}': {v!r} (expected an ISO 8601 timestamp like 2024-06-13T04:00:00.592Z)"
            ) from None
    flags = []
    for name, kind in _FILTER_BOOLS.items():
        b = parse_bool(params, name)
        if b is not None:
            flags.append((kind, b))
    return ListQuery(
        created_gt=ts["createdAt:gt"],
        created_lt=ts["createdAt:lt"],
        updated_gte=ts["updatedAt:gte"],
        updated_gt=ts["updatedAt:gt"],
        updated_lt=ts["updatedAt:lt"],
        updated_lte=ts["updatedAt:lte"],
        flags=tuple(flags),
        enrich=enrichment(params),
    )


def page_size(params: Mapping[str, str], cap: int) -> int:
    """``pageSize`` (default 25), silently capped at ``cap`` as a server would."""
    v = params.get("pageSize")
    if v is None:
        return min(_DEFAULT_PAGE_SIZE, cap)
    try:
        n = int(v.strip())
    except ValueError:
        raise BadRequest(f"Invalid value for 'pageSize': {v!r} (expected a positive integer)") from None
    if n < 1:
        raise BadRequest(f"Invalid value for 'pageSize': {v!r} (expected a positive integer)")
    # The real maximum is undocumented; we silently cap like a server would.
    return min(n, cap)


def encode_cursor(snapshot_ms: int, offset: int, qhash: str) -> str:
    """An opaque cursor: the listing's snapshot time, the next offset and the query's digest."""
    raw = json.dumps({"v": 1, "t": snapshot_ms, "o": offset, "q": qhash}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, qhash: str) -> tuple[int, int]:
    """``(snapshot_ms, offset)`` of a cursor; :class:`BadRequest` if it is not one of ours
    or belongs to a query with other filters."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        snap, offset, q = data["t"], data["o"], data["q"]
        if not (isinstance(snap, int) and isinstance(offset, int) and offset >= 0 and isinstance(q, str)):
            raise ValueError
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise BadRequest("Invalid value for 'cursor': not a cursor returned by this endpoint") from None
    if q != qhash:
        raise BadRequest("Invalid value for 'cursor': it belongs to a different query (filters changed)")
    return snap, offset
