"""`TickClock`: the two clocks a sensor tick reads, injectable so tests and compressed-time
runs pass their own instead of patching module globals."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone


def utc_now() -> datetime:
    """Now, by the wall clock, in UTC."""
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class TickClock:
    """`monotonic` (seconds) times the tick's listing budget; `wall` (UTC datetime) is the
    base of the pending days' backoff, the clock Dagster's run records use."""

    monotonic: Callable[[], float] = time.monotonic
    wall: Callable[[], datetime] = utc_now


SYSTEM_CLOCK = TickClock()
"""The real clocks: what every shipped sensor runs on."""
