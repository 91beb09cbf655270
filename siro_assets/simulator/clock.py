"""Clocks for the simulator, plus the millisecond timestamp helpers it uses internally.

The simulated world is a pure function of time; the clock decides which "now" a request sees.
Tests use :class:`FixedClock` so nothing depends on the wall clock.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from typing import Protocol, runtime_checkable

__all__ = [
    "Clock",
    "FixedClock",
    "OffsetClock",
    "WallClock",
]

UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


@runtime_checkable
class Clock(Protocol):
    """Anything with ``now() -> datetime`` returning a tz-aware UTC datetime."""

    def now(self) -> datetime:  # pragma: no cover - protocol
        """Return the current simulated time (tz-aware, UTC)."""
        ...


def _require_aware(t: datetime) -> datetime:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError("simulator clocks need tz-aware datetimes")
    return t.astimezone(UTC)


class FixedClock:
    """A clock that only moves when told to (``set`` / ``advance``); thread-safe."""

    def __init__(self, t: datetime) -> None:
        """Start the clock at ``t`` (tz-aware)."""
        self._t = _require_aware(t)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """Return the fixed time."""
        with self._lock:
            return self._t

    def set(self, t: datetime) -> None:
        """Jump to ``t`` (tz-aware); going backwards is allowed, for tests that need it."""
        t = _require_aware(t)
        with self._lock:
            self._t = t

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward (or backward, with a negative delta) by ``delta``."""
        with self._lock:
            self._t = self._t + delta

    def __repr__(self) -> str:
        return f"FixedClock({self._t.isoformat()})"


class OffsetClock:
    """The wall clock shifted by a constant offset (e.g. to replay a past week live)."""

    def __init__(self, offset: timedelta) -> None:
        """``offset`` is added to the current UTC wall-clock time."""
        self.offset = offset

    def now(self) -> datetime:
        """Return wall-clock UTC now plus the offset."""
        return datetime.now(UTC) + self.offset

    def __repr__(self) -> str:
        return f"OffsetClock({self.offset!r})"


class WallClock:
    """The real UTC wall clock."""

    def now(self) -> datetime:
        """Return the current UTC time."""
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "WallClock()"


# Private timestamp helpers. They mirror siro_assets.api_client.timestamps on purpose so the simulator
# does not import the client package (it must stay an independent stand-in for the real API).


def to_ms(t: datetime) -> int:
    """Milliseconds since the epoch, floored (sub-millisecond precision is dropped)."""
    t = _require_aware(t)
    return (t - _EPOCH) // _MS


def to_us(t: datetime) -> int:
    """Microseconds since the epoch (exact); used for query bounds."""
    t = _require_aware(t)
    return (t - _EPOCH) // timedelta(microseconds=1)


def from_ms(ms: int) -> datetime:
    """The aware UTC datetime for epoch milliseconds."""
    return _EPOCH + timedelta(milliseconds=ms)


def format_ms(ms: int) -> str:
    """Format epoch milliseconds the way the API does: ``2024-06-13T04:00:00.592Z``."""
    t = from_ms(ms)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def format_dt(t: datetime) -> str:
    """Format an aware datetime the way the API does (millisecond precision, ``Z``)."""
    return format_ms(to_ms(t))


def parse_iso(s: str) -> datetime:
    """Parse an ISO 8601 timestamp; naive values are taken as UTC. Raises ValueError."""
    if not isinstance(s, str) or len(s) < 10 or len(s) > 40:
        raise ValueError(f"not an ISO 8601 timestamp: {s!r}")
    t = datetime.fromisoformat(s.strip())
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC)
