"""What the fake CRMs share: replies, fault injection, a write journal, a stepping clock."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from siro_assets.simulator.clock import FixedClock

Reply = tuple[int, dict[str, str], bytes]

# Faults a fake can serve. "lost_response" applies the write and then drops the answer.
SERVER_ERROR, UNAVAILABLE, DISCONNECT, LOST_RESPONSE, RATE_LIMIT, LOCKED = (
    "server_error", "unavailable", "disconnect", "lost_response", "rate_limit", "locked",
)
# Salesforce record errors that may pass on a later attempt (like LOCKED, the first
# record of the request gets the error; the others go through).
UNKNOWN_EXCEPTION, RECORD_UNAVAILABLE, RUNNING_TOO_LONG = "unknown_exception", "record_unavailable", "running_too_long"


class LostResponse(Exception):
    """Raised by a fake to drop the connection instead of answering (the transport or
    server turns it into a dropped connection). `applied` says whether the write landed."""

    def __init__(self, applied: bool) -> None:
        super().__init__("simulated dropped connection")
        self.applied = applied


def reply(status: int, body: Any = None, headers: dict[str, str] | None = None) -> Reply:
    """A JSON reply (no body for None)."""
    content = b"" if body is None else json.dumps(body).encode()
    out = {"content-type": "application/json"} if body is not None else {}
    out.update(headers or {})
    return status, out, content


def bearer(headers: dict[str, str]) -> str | None:
    """The bearer token of a request, if any."""
    value = headers.get("authorization", "")
    return value[7:] if value.lower().startswith("bearer ") else None


@dataclass
class CrmFaults:
    """Which faults a fake serves: a script served first, then `rate` at random.

    `kinds` are drawn from uniformly when a random fault fires; a fake ignores kinds that
    make no sense for it (a generic endpoint has no row locks).
    """

    rate: float = 0.0
    kinds: tuple[str, ...] = (SERVER_ERROR, DISCONNECT, LOST_RESPONSE)
    seed: int = 0
    script: list[str] = field(default_factory=list)
    _rng: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def next(self, allowed: Iterable[str]) -> str | None:
        """The fault for this request, if any, among `allowed`."""
        allowed = tuple(allowed)
        with self._lock:
            while self.script:
                kind = self.script.pop(0)
                if kind in allowed or kind == "none":
                    return None if kind == "none" else kind
            if self.rate and self._rng.random() < self.rate:
                kinds = [k for k in self.kinds if k in allowed]
                return self._rng.choice(kinds) if kinds else None
        return None


@dataclass
class JournalEntry:
    """One field value a fake CRM applied, and whether the client was told so."""

    crm_object: str
    record_id: str
    field: str
    value: Any
    acknowledged: bool = False
    idempotency_key: str | None = None


class Journal:
    """Every field write a fake applied, in order."""

    def __init__(self) -> None:
        self.entries: list[JournalEntry] = []
        self._lock = threading.Lock()

    def add(self, crm_object: str, record_id: str, values: dict[str, Any], key: str | None = None) -> list[JournalEntry]:
        """Journal one record's applied fields; returns the entries to acknowledge later."""
        entries = [JournalEntry(crm_object, record_id, f, v, idempotency_key=key) for f, v in values.items()]
        with self._lock:
            self.entries += entries
        return entries

    @staticmethod
    def acknowledge(entries: Iterable[JournalEntry]) -> None:
        """Mark entries whose answer reached the client."""
        for entry in entries:
            entry.acknowledged = True

    def resent_after_ack(self) -> list[JournalEntry]:
        """Writes that repeat the value the CRM had just acknowledged for the same field: defects."""
        last: dict[tuple[str, str, str], JournalEntry] = {}
        repeats = []
        for entry in self.entries:
            key = (entry.crm_object, entry.record_id, entry.field.lower())
            previous = last.get(key)
            if previous is not None and previous.acknowledged and previous.value == entry.value:
                repeats.append(entry)
            last[key] = entry
        return repeats


class SteppingClock(FixedClock):
    """A fake clock that `sleep` advances: share it between a fake CRM and the sinks."""

    def sleep(self, seconds: float) -> None:
        """Advance the clock instead of waiting."""
        if seconds > 0:
            self.advance(timedelta(seconds=seconds))

    def monotonic(self) -> float:
        """Seconds since the epoch, as a float, for pacers."""
        return self.now().timestamp()
