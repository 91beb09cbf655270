"""Timestamp helpers for the Siro API.

The API speaks ISO 8601 UTC with exactly millisecond precision
(``2024-06-13T04:00:00.592Z``). Everything here is tz-aware: a naive datetime is
ambiguous about its zone and would silently shift a window by hours, so it is rejected.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["MS", "format_ts", "parse_ts", "ceil_ms", "floor_ms", "require_aware"]

MS = timedelta(milliseconds=1)


def require_aware(dt: datetime, what: str = "datetime") -> datetime:
    """Return ``dt`` unchanged if it is tz-aware, else raise ``ValueError``."""
    if not isinstance(dt, datetime):
        raise TypeError(f"{what} must be a datetime, got {type(dt).__name__}")
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (got naive {dt.isoformat()})")
    return dt


def floor_ms(dt: datetime) -> datetime:
    """Drop sub-millisecond precision (round toward the past)."""
    return dt.replace(microsecond=dt.microsecond - dt.microsecond % 1000)


def ceil_ms(dt: datetime) -> datetime:
    """Round up to the next whole millisecond if ``dt`` has sub-millisecond precision."""
    floored = floor_ms(dt)
    return floored if floored == dt else floored + MS


def format_ts(dt: datetime) -> str:
    """Format a tz-aware datetime as UTC ISO 8601 with 3 fractional digits and ``Z``.

    Sub-millisecond precision is truncated. Naive datetimes raise ``ValueError``.
    """
    dt = require_aware(dt).astimezone(UTC)
    return f"{dt:%Y-%m-%dT%H:%M:%S}.{dt.microsecond // 1000:03d}Z"


def parse_ts(s: str) -> datetime:
    """Parse an ISO 8601 timestamp with an explicit offset or ``Z`` into a UTC datetime.

    Strings without a zone raise ``ValueError`` for the same reason ``format_ts``
    rejects naive datetimes.
    """
    if not isinstance(s, str):
        raise TypeError(f"timestamp must be a string, got {type(s).__name__}")
    dt = datetime.fromisoformat(s.strip())
    return require_aware(dt, f"timestamp {s!r}").astimezone(UTC)
