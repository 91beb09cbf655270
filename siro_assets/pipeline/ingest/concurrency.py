"""How many list requests to keep in flight: Little's law over the measured latency.

To use a rate budget of `r` requests/second when each request takes `W` seconds, about
`r x W` requests must be in flight at any moment. The latency is measured from the
moment the pacer grants a request its slot to the moment its page is back (the
client's `RawPage.latency_seconds`), so time spent waiting for the pacer never
inflates it (which would feed back into ever more concurrency).
"""

from __future__ import annotations

import math

# Latency varies from request to request (jitter, bigger pages); a little more in flight
# than the average needs keeps the budget used when a few requests are slow.
HEADROOM = 1.25


def littles_law_concurrency(requests_per_minute: float, latency_seconds: float, cap: int) -> int:
    """Requests to keep in flight to use `requests_per_minute` at `latency_seconds` each.

    Unpaced (`inf`) means the server, not a budget, is the bound: use `cap`.
    """
    if cap < 1:
        raise ValueError("cap must be >= 1")
    if math.isinf(requests_per_minute):
        return cap
    in_flight = requests_per_minute / 60.0 * max(latency_seconds, 0.0) * HEADROOM
    return max(1, min(cap, math.ceil(in_flight) + 1))


class LatencyMeter:
    """Exponentially weighted mean of request latency, seeded with a guess."""

    def __init__(self, initial_seconds: float = 0.25, weight: float = 0.2) -> None:
        self.seconds = initial_seconds
        self.samples = 0
        self._weight = weight

    def observe(self, seconds: float) -> None:
        """Fold one measured latency in (the first one replaces the guess)."""
        if self.samples == 0:
            self.seconds = seconds
        else:
            self.seconds += self._weight * (seconds - self.seconds)
        self.samples += 1
