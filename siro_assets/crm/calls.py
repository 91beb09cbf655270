"""HTTP calls to a CRM: retries on what may pass, counts of calls and 429s, pacing.

Retried: transport errors (including a response lost after the CRM applied a write:
every sink sends absolute values, so sending again is safe), 5xx, and 429 after the
CRM's rate window. Everything else is returned to the sink to interpret. The
`Authorization` header is never part of an error message or log line, and every
configured secret is scrubbed from the text of the error raised (httpx quotes a header
value it refuses).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception, retry_if_result, stop_after_attempt

from .. import redaction
from ..api_client.pacing import RequestPacer
from .writes import CallStats

_RETRIED_STATUSES = {429, 500, 502, 503, 504}


class CrmUnreachable(Exception):
    """The CRM did not answer usefully within the attempts allowed."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(redaction.scrub(message))
        self.status = status


class CrmCalls:
    """One CRM's HTTP client with retries, pacing and call counting.

    `sleep` and `clock` are injectable so tests run on fake time.
    """

    def __init__(
        self,
        client: httpx.Client,
        stats: CallStats,
        *,
        max_attempts: int = 5,
        initial_backoff: float = 0.5,
        rate_limit_window: float = 10.0,
        requests_per_second: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.stats = stats
        self.max_attempts = max_attempts
        self.initial_backoff = initial_backoff
        self.rate_limit_window = rate_limit_window
        self.sleep = sleep
        rpm = math.inf if not requests_per_second else requests_per_second * 60.0
        self.pacer = RequestPacer(rpm, burst=1, clock=clock, sleep=sleep)

    def _wait(self, state: RetryCallState) -> float:
        outcome = state.outcome
        if outcome is not None and not outcome.failed and outcome.result().status_code == 429:
            # HubSpot sends no Retry-After: its limit is a rolling window, so wait one out.
            return self.rate_limit_window
        return min(self.initial_backoff * 2 ** (state.attempt_number - 1), 30.0)

    def _attempt(self, method: str, url: str, kwargs: dict[str, Any]) -> httpx.Response:
        self.pacer.acquire()
        self.stats.api_calls += 1
        response = self.client.request(method, url, **kwargs)
        if response.status_code == 429:
            self.stats.rate_limited += 1
        return response

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send a request, retrying transport errors, 5xx and 429; raise CrmUnreachable when they persist."""
        retrying = Retrying(
            retry=retry_if_exception(lambda e: isinstance(e, httpx.TransportError))
            | retry_if_result(lambda r: r.status_code in _RETRIED_STATUSES),
            stop=stop_after_attempt(self.max_attempts),
            wait=self._wait,
            sleep=self.sleep,
            retry_error_callback=lambda state: state.outcome,
        )
        outcome = retrying(self._attempt, method, url, kwargs)
        return _unwrap(outcome, method, url)

    def close(self) -> None:
        """Close the underlying client."""
        self.client.close()


def _unwrap(outcome: Any, method: str, url: str) -> httpx.Response:
    # With retry_error_callback the last attempt's Future comes back instead of a RetryError.
    if isinstance(outcome, httpx.Response):
        response = outcome
    elif outcome.failed:
        exc = outcome.exception()
        raise CrmUnreachable(f"{method} {_safe(url)}: {redaction.describe(exc)}") from None
    else:
        response = outcome.result()
    if response.status_code in _RETRIED_STATUSES:
        raise CrmUnreachable(f"{method} {_safe(url)} answered {response.status_code}", status=response.status_code)
    return response


def _safe(url: str) -> str:
    # Only scheme, host and path: a query string could carry a credential.
    parsed = httpx.URL(url)
    return str(parsed.copy_with(query=None))
