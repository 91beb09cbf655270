"""Draining the inbox past a cursor into one batch of recording ids (no Dagster, no HTTP)."""

from __future__ import annotations

from dataclasses import dataclass

from .inbox import Inbox


@dataclass(frozen=True)
class Drained:
    """The deduped recording ids of the events `first_seq..last_seq`, in first-notified order."""

    ids: tuple[str, ...]
    first_seq: int
    last_seq: int

    @property
    def run_key(self) -> str:
        """Unique per drained range: seqs are never reused, so neither is the key."""
        return f"webhooks:{self.first_seq}-{self.last_seq}"


def drain(inbox: Inbox, after_seq: int, max_ids: int, *, endpoint: str | None = None) -> Drained | None:
    """The events past `after_seq`, up to `max_ids` distinct recordings; None if there are none.

    Stops before the event that would add id number `max_ids + 1`, so the next drain
    starts at that event and nothing is skipped.
    """
    ids: dict[str, None] = {}
    first = last = None
    cursor = after_seq
    while True:
        events = inbox.read_after(cursor, 500, endpoint=endpoint)
        if not events:
            break
        for event in events:
            if event.recording_id not in ids and len(ids) >= max_ids:
                return Drained(tuple(ids), first, last)
            ids.setdefault(event.recording_id)
            first = event.seq if first is None else first
            last = cursor = event.seq
    return Drained(tuple(ids), first, last) if ids else None
