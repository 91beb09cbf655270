"""The `updatedAt` sensor's cursor: what it remembers between ticks, as compact JSON.

No Dagster here. Version 2 adds the chunk span and the pending days to version 1;
a version-1 cursor still reads (as one with nothing pending).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from ..api_client.timestamps import format_ts, parse_ts

__all__ = [
    "BULK_SECOND",
    "Bucket",
    "CURSOR_VERSION",
    "InvalidSensorCursor",
    "Pair",
    "PendingRequest",
    "RESET_HINT",
    "SensorCursor",
    "TieWalk",
    "bucket_of",
    "pair_hash",
]

CURSOR_VERSION = 2
_READABLE_VERSIONS = (1, 2)

Pair = tuple[str, datetime]
"""One observed change: (recording id, its updatedAt)."""

Bucket = tuple[int, int]
"""``(count, xor of pair_hash)`` of the requested pairs of one second that ``seen`` does
not list one by one (see ``SensorCursor.bulk``)."""

BULK_SECOND = timedelta(seconds=1)


def bucket_of(updated: datetime) -> datetime:
    """The start of the second ``updated`` falls in: the key of its ``bulk`` bucket."""
    return updated - timedelta(microseconds=updated.microsecond)


def pair_hash(pair: Pair) -> int:
    """A 64-bit hash of one ``(id, updatedAt)`` change, the same in every process."""
    rid, updated = pair
    return int.from_bytes(hashlib.blake2b(f"{rid}@{format_ts(updated)}".encode(), digest_size=8).digest(), "big")


RESET_HINT = (
    "Reset it with `dagster sensor cursor recordings_updated_sensor --delete` "
    "(the next tick starts from now minus the lookback) or `--set` a valid cursor."
)


class InvalidSensorCursor(ValueError):
    """The stored sensor cursor is not one this code wrote (hand-edited or corrupted)."""


@dataclass(frozen=True)
class PendingRequest:
    """A day the sensor requested and no successful run has covered yet.

    ``key`` names the request: the run key the sensor gave it (every run of it, retries
    included, carries the key in the ``siro/request`` tag), or ``run:<run id>`` for a
    run someone else queued that the sensor relied on instead of requesting its own.
    ``requested_at`` is the wall-clock time of the request (the base of the re-request
    backoff) and ``attempt`` counts the sensor's requests for the day so far.
    ``since`` is the oldest ``updatedAt`` among the changes the day still owes: a later
    request for the day must list from it (or pull the whole day) to replace this one.
    None means it is not known (an entry written before the field existed), so only a
    whole-day pull covers the day.
    """

    key: str
    requested_at: datetime
    attempt: int = 1
    since: datetime | None = None

    def to_doc(self) -> dict:
        doc = {"key": self.key, "at": format_ts(self.requested_at), "n": self.attempt}
        if self.since is not None:
            doc["since"] = format_ts(self.since)
        return doc

    @classmethod
    def from_doc(cls, doc: object) -> PendingRequest:
        if not isinstance(doc, Mapping) or not isinstance(doc.get("key"), str) or "at" not in doc:
            raise ValueError('a pending entry must be {"key": str, "at": timestamp, "n": int, "since": timestamp}')
        attempt = doc.get("n", 1)
        if not isinstance(attempt, int) or attempt < 1:
            raise ValueError(f"pending attempt must be a positive integer, got {attempt!r}")
        since = doc.get("since")
        return cls(key=doc["key"], requested_at=parse_ts(doc["at"]), attempt=attempt,
                   since=parse_ts(since) if since is not None else None)


@dataclass(frozen=True)
class TieWalk:
    """A millisecond of ``updatedAt`` too crowded for one tick, walked by ``createdAt``.

    Every recording with ``updatedAt == at`` and ``createdAt < created_from`` has been
    requested (``created_from`` None: none yet); ``span`` is the next ``createdAt``
    chunk's width.
    """

    at: datetime
    created_from: datetime | None = None
    span: timedelta | None = None

    def to_doc(self) -> dict:
        doc: dict = {"at": format_ts(self.at)}
        if self.created_from is not None:
            doc["created_from"] = format_ts(self.created_from)
        if self.span is not None:
            doc["span_ms"] = self.span // timedelta(milliseconds=1)
        return doc

    @classmethod
    def from_doc(cls, doc: object) -> TieWalk:
        if not isinstance(doc, Mapping) or "at" not in doc:
            raise ValueError('"tie" must be {"at": timestamp, "created_from": timestamp}')
        created_from = doc.get("created_from")
        return cls(
            at=parse_ts(doc["at"]),
            created_from=parse_ts(created_from) if created_from is not None else None,
            span=_parse_span(doc.get("span_ms")),
        )


@dataclass(frozen=True)
class SensorCursor:
    """What the sensor remembers between ticks.

    ``watermark``: everything updated before it has been listed (None until the API
    has returned anything). ``seen`` holds the ``(id, updatedAt)`` pairs already
    requested whose ``updatedAt`` is inside the lookback window below the watermark:
    exactly the pairs the next listing can return again. ``since`` is the first tick's
    start (``now - lookback``): a floor for the listing, kept only while
    ``watermark - lookback`` is still below it. ``span`` is the width of the next
    ``updatedAt`` chunk to list (None: the default), learnt from the backlog's density.
    ``pending`` maps each requested day to the request that must still succeed for it.
    ``tie`` is set while a millisecond too crowded for one tick is being walked by
    ``createdAt``; once it is done, ``since`` is moved just past it so that no listing
    pages through it again.

    ``seen`` holds one pair per id (its newest ``updatedAt``) and at most
    ``change_tracking.SEEN_CAP`` of them; past that (a bulk CRM sync), the densest
    seconds are kept in ``bulk`` instead: per second, how many pairs were requested and
    the xor of their hashes, so that a re-listing of that second can be recognised as
    the same set of pairs (see ``change_tracking.plan_changes``).
    """

    watermark: datetime | None = None
    seen: frozenset[Pair] = field(default_factory=frozenset)
    since: datetime | None = None
    span: timedelta | None = None
    pending: Mapping[date, PendingRequest] = field(default_factory=dict)
    tie: TieWalk | None = None
    bulk: Mapping[datetime, Bucket] = field(default_factory=dict)

    def to_json(self) -> str:
        """Compact JSON, sorted so that equal cursors serialise identically:
        ``{"v": 2, "watermark": ts, "seen": {updatedAt: [ids]}}`` plus ``since``,
        ``span_ms`` and ``pending`` (``{day: {"key", "at", "n", "since"}}``) when they are set.

        Pairs are grouped by ``updatedAt`` because ties (bulk CRM syncs) are common.
        """
        by_ts: dict[str, list[str]] = defaultdict(list)
        for rid, updated in self.seen:
            by_ts[format_ts(updated)].append(rid)
        doc: dict = {
            "v": CURSOR_VERSION,
            "watermark": format_ts(self.watermark) if self.watermark is not None else None,
            "seen": {ts: sorted(ids) for ts, ids in sorted(by_ts.items())},
        }
        if self.since is not None:
            doc["since"] = format_ts(self.since)
        if self.span is not None:
            doc["span_ms"] = self.span // timedelta(milliseconds=1)
        if self.tie is not None:
            doc["tie"] = self.tie.to_doc()
        if self.bulk:
            doc["bulk"] = {format_ts(t): [n, f"{h:016x}"] for t, (n, h) in sorted(self.bulk.items())}
        if self.pending:
            doc["pending"] = {d.isoformat(): p.to_doc() for d, p in sorted(self.pending.items())}
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=True)

    @classmethod
    def from_json(cls, raw: str | None) -> SensorCursor:
        """Parse a stored cursor; ``None`` or blank (no cursor yet, or cleared) is the first tick.

        Blank counts as cleared because the Dagster UI's cursor dialog saves an emptied
        text box as ``""``. Anything else that is not a cursor written by ``to_json``
        raises ``InvalidSensorCursor`` naming how to reset it: guessing a starting point
        would silently skip or replay changes.
        """
        if raw is None or not raw.strip():
            return cls()
        try:
            doc = json.loads(raw)
            if not isinstance(doc, dict) or doc.get("v") not in _READABLE_VERSIONS:
                raise ValueError(f"expected an object with \"v\": {CURSOR_VERSION}")
            wm_raw = doc.get("watermark")
            watermark = parse_ts(wm_raw) if wm_raw is not None else None
            since_raw = doc.get("since")
            since = parse_ts(since_raw) if since_raw is not None else None
            seen = _parse_seen(doc.get("seen") or {})
            span = _parse_span(doc.get("span_ms"))
            pending_raw = doc.get("pending") or {}
            if not isinstance(pending_raw, Mapping):
                raise ValueError("\"pending\" must be an object of day -> request")
            pending = {date.fromisoformat(d): PendingRequest.from_doc(p) for d, p in pending_raw.items()}
            tie = TieWalk.from_doc(doc["tie"]) if doc.get("tie") is not None else None
            bulk = _parse_bulk(doc.get("bulk") or {})
        except (ValueError, TypeError) as exc:
            shown = raw if len(raw) <= 120 else raw[:117] + "..."
            raise InvalidSensorCursor(f"Unreadable sensor cursor {shown!r}: {exc}. {RESET_HINT}") from exc
        if watermark is None and seen:
            raise InvalidSensorCursor(f"Sensor cursor has ids but no watermark: {raw[:120]!r}. {RESET_HINT}")
        return cls(watermark=watermark, seen=seen, since=since, span=span, pending=pending, tie=tie, bulk=bulk)


def _parse_seen(seen_raw: object) -> frozenset[Pair]:
    if not isinstance(seen_raw, Mapping):
        raise ValueError("\"seen\" must be an object of updatedAt -> [ids]")
    seen: set[Pair] = set()
    for ts, ids in seen_raw.items():
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ValueError(f"\"seen\"[{ts!r}] must be a list of ids")
        updated = parse_ts(ts)
        seen.update((rid, updated) for rid in ids)
    return frozenset(seen)


def _parse_span(raw: object) -> timedelta | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise ValueError(f"\"span_ms\" must be a positive integer, got {raw!r}")
    return timedelta(milliseconds=raw)


def _parse_bulk(raw: object) -> dict[datetime, Bucket]:
    if not isinstance(raw, Mapping):
        raise ValueError("\"bulk\" must be an object of second -> [count, hash]")
    bulk = {}
    for ts, value in raw.items():
        if (not isinstance(value, list) or len(value) != 2 or isinstance(value[0], bool)
                or not isinstance(value[0], int) or value[0] < 1 or not isinstance(value[1], str)):
            raise ValueError(f"\"bulk\"[{ts!r}] must be [count >= 1, hex hash]")
        bulk[bucket_of(parse_ts(ts))] = (value[0], int(value[1], 16))
    return bulk
