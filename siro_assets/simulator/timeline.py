"""A simulated recording's event timeline: what happens to it, and when.

Times are integer epoch milliseconds (the API's precision). A :class:`BaseRecording` holds
its whole schedule, future events included; its state at any moment is the events up to
that moment, and ``updatedAt`` is the latest of them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["BaseRecording", "EVENT_KINDS", "Schedule", "schedule_events", "DAY_MS", "HOUR_MS", "MIN_MS"]

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MIN_MS = 60_000

#: Event kinds in a recording's timeline, in the order same-millisecond events apply.
EVENT_KINDS = (
    "created", "processed", "summarized", "extracted", "linked", "relinked", "deleted", "purged", "resynced"
)
_ORDER = {k: n for n, k in enumerate(EVENT_KINDS)}


class BaseRecording:
    """The time-independent description of one recording plus its event schedule.

    Event times are epoch ms (or None when the event never happens). ``state_at(now_ms)`` style
    questions are answered by the World; this object is immutable once built.
    """

    __slots__ = (
        "id", "day", "index", "created", "events", "user_id", "title", "purged_title_blank",
        "duration", "lat", "lon", "result", "crm", "crm_relinked", "summary", "extractions",
        "evaluation_score", "followups", "_rng_seed",
    )

    def __init__(self) -> None:
        self.events: list[tuple[int, str]] = []

    def event_time(self, kind: str) -> int | None:
        """The time of the first event of ``kind`` or None."""
        for t, k in self.events:
            if k == kind:
                return t
        return None

    def updated_ms(self, now_ms: int) -> int:
        """updatedAt at ``now_ms``: the latest event time <= now (events are sorted)."""
        u = self.created
        for t, _ in self.events:
            if t <= now_ms:
                if t > u:
                    u = t
            else:
                break
        return u

    def has(self, kind: str, now_ms: int) -> bool:
        """Whether an event of ``kind`` has happened by ``now_ms``."""
        for t, k in self.events:
            if t > now_ms:
                return False
            if k == kind:
                return True
        return False


@dataclass(frozen=True)
class Schedule:
    """A recording's sorted events, and the times of the ones its content depends on."""

    events: list[tuple[int, str]]
    summarized: int | None
    extracted: int | None
    linked: int | None


def schedule_events(
    rng: random.Random, created: int, max_delay_ms: int, bulk_link: list[int], bulk_relink: int
) -> Schedule:
    """Draw a recording's events from ``rng``, all within ``max_delay_ms`` of ``created``.

    ``bulk_link`` / ``bulk_relink`` are the day's shared "bulk CRM sync" moments, which give
    many recordings the same ``updatedAt``.
    """
    limit = created + max_delay_ms

    def at(t: int) -> int:
        return min(t, limit)

    ev: list[tuple[int, str]] = [(created, "created")]
    processed = summarized = extracted = None
    if rng.random() < 0.985:
        processed = at(created + rng.randrange(MIN_MS, 30 * MIN_MS))
        ev.append((processed, "processed"))
        if rng.random() < 0.9:
            summarized = at(processed + rng.randrange(30_000, 20 * MIN_MS))
            ev.append((summarized, "summarized"))
        if rng.random() < 0.88:
            extracted = at(processed + rng.randrange(30_000, 25 * MIN_MS))
            ev.append((extracted, "extracted"))
    linked = None
    if rng.random() < 0.8:
        if rng.random() < 0.3 and bulk_link[0] <= limit:
            linked = bulk_link[0] if rng.random() < 0.6 or bulk_link[1] > limit else bulk_link[1]
        else:
            linked = at(created + rng.randrange(HOUR_MS, 3 * DAY_MS))
        ev.append((linked, "linked"))
        if rng.random() < 0.15:
            if rng.random() < 0.4 and linked < bulk_relink <= limit:
                rel = bulk_relink
            else:
                rel = at(linked + rng.randrange(2 * HOUR_MS, 2 * DAY_MS))
            if rel > linked:
                ev.append((rel, "relinked"))
    if rng.random() < 0.05:
        ev.append((at(created + rng.randrange(DAY_MS, 4 * DAY_MS + 12 * HOUR_MS)), "deleted"))
    if rng.random() < 0.03:
        ev.append((at(created + rng.randrange(2 * DAY_MS, 5 * DAY_MS)), "purged"))
    ev.sort(key=lambda e: (e[0], _ORDER[e[1]]))
    return Schedule(events=ev, summarized=summarized, extracted=extracted, linked=linked)
