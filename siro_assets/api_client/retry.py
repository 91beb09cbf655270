"""Retry policy for transient Siro failures (429, 5xx, timeouts, dropped connections,
malformed bodies), built on tenacity with exponential backoff plus jitter."""

from __future__ import annotations

import random
from dataclasses import dataclass

from tenacity import RetryCallState, stop_after_attempt

__all__ = ["RetryPolicy", "RETRYABLE_STATUS"]

# 408 and 425 are rare but transient by definition; 429 and 5xx are the documented ones.
RETRYABLE_STATUS = frozenset({408, 425, 429})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry a transient failure.

    ``max_attempts`` counts every attempt including the first. Waits grow as
    ``initial_backoff * 2**n`` capped at ``max_backoff``, plus up to
    ``initial_backoff`` of random jitter so parallel workers do not retry in lockstep.
    ``RetryPolicy(max_attempts=4, initial_backoff=0, max_backoff=0)`` never waits.
    """

    # Eight attempts wait about 60 s in all (0.5, 1, 2, 4, 8, 16, 30): long enough to
    # outlast a per-minute rate-limit window rather than fail inside it.
    max_attempts: int = 8
    initial_backoff: float = 0.5
    max_backoff: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.initial_backoff < 0 or self.max_backoff < 0:
            raise ValueError("backoff values must be >= 0")

    def stop(self):
        """The tenacity stop strategy."""
        return stop_after_attempt(self.max_attempts)

    def backoff(self, attempt_number: int) -> float:
        """Seconds to wait after failed attempt ``attempt_number`` (1-based)."""
        base = min(self.max_backoff, self.initial_backoff * 2 ** (attempt_number - 1))
        # Jitter after the cap, so workers that all reached the cap still spread out.
        return base + random.uniform(0, self.initial_backoff)

    def wait(self):
        """The tenacity wait strategy (exponential backoff with jitter, capped)."""
        # Hand-rolled rather than wait_exponential_jitter, whose ``initial`` argument is
        # deprecated in tenacity 9.2 while its replacement does not exist in 8.x.
        def _wait(retry_state: RetryCallState) -> float:
            return self.backoff(retry_state.attempt_number)

        return _wait
