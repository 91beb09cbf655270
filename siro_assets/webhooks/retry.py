"""The webhook sensor's cursor: an inbox seq plus the notified ids not yet fetchable (no Dagster, no HTTP).

A recording can be notified before the API serves it (404). Such ids stay in the cursor
with an attempt count and a next-try time (exponential backoff from an injected clock);
after `max_attempts` they are given up, since the updatedAt sensor's polling is the backstop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

BASE_DELAY = timedelta(seconds=30)
MAX_ATTEMPTS = 6  # 30 s .. 16 min of retries, then polling picks it up
MAX_PENDING = 1000  # bounds the cursor: the oldest are given up first


@dataclass(frozen=True)
class Pending:
    """A notified id the API did not serve yet: tried `attempts` times, next due at `next_try`."""

    recording_id: str
    attempts: int
    next_try: datetime


@dataclass(frozen=True)
class WebhookCursor:
    """The last drained inbox seq and the ids waiting for a retry."""

    seq: int = 0
    pending: tuple[Pending, ...] = ()

    @classmethod
    def parse(cls, raw: str | None) -> "WebhookCursor":
        """Read a cursor; a bare integer (the earlier format) is a seq with nothing pending."""
        if not raw:
            return cls()
        if raw.strip().isdigit():
            return cls(int(raw))
        data = json.loads(raw)
        return cls(int(data["seq"]), tuple(
            Pending(p["id"], int(p["attempts"]), datetime.fromisoformat(p["next"])) for p in data.get("pending", ())
        ))

    def serialize(self) -> str:
        """The cursor string Dagster stores."""
        if not self.pending:
            return str(self.seq)
        return json.dumps({"seq": self.seq, "pending": [
            {"id": p.recording_id, "attempts": p.attempts, "next": p.next_try.isoformat()} for p in self.pending
        ]}, separators=(",", ":"))

    def due(self, now: datetime) -> tuple[str, ...]:
        """The pending ids whose next try has come."""
        return tuple(p.recording_id for p in self.pending if p.next_try <= now)


def after_attempt(
    cursor: WebhookCursor, seq: int, missing: list[str], fetched: list[str], now: datetime,
    *, max_attempts: int = MAX_ATTEMPTS, base_delay: timedelta = BASE_DELAY, max_pending: int = MAX_PENDING,
) -> tuple[WebhookCursor, list[str]]:
    """The next cursor after a tick tried some ids, and the ids given up.

    `missing` were answered 404 this tick, `fetched` were found; pending ids tried
    neither way keep their state.
    """
    tried = set(missing) | set(fetched)
    previous = {p.recording_id: p for p in cursor.pending}
    kept = [p for p in cursor.pending if p.recording_id not in tried]
    given_up: list[str] = []
    for rid in dict.fromkeys(missing):
        attempts = previous[rid].attempts + 1 if rid in previous else 1
        if attempts >= max_attempts:
            given_up.append(rid)
        else:
            kept.append(Pending(rid, attempts, now + base_delay * 2 ** (attempts - 1)))
    if len(kept) > max_pending:
        given_up += [p.recording_id for p in kept[: len(kept) - max_pending]]
        kept = kept[len(kept) - max_pending:]
    return replace(cursor, seq=seq, pending=tuple(kept)), given_up
