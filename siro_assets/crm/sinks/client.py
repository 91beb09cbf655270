"""The constructor every HTTP CRM sink shares: settings, call counts, one `CrmCalls`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ClassVar

import httpx

from ..calls import CrmCalls
from ..writes import CallStats


class HttpCrmSink:
    """Base of the HTTP sinks: builds the retrying, paced client from the settings.

    A sink says what differs through `_headers()` (fixed headers, e.g. a bearer token)
    and `_pacing()` (extra `CrmCalls` options); `repr_field` names the one setting its
    repr shows, never a secret.
    """

    name: ClassVar[str]
    repr_field: ClassVar[str]

    def __init__(
        self,
        settings: Any,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        timeout: float = 30.0,
    ) -> None:
        self.settings = settings
        self.stats = CallStats()
        self.calls = CrmCalls(
            httpx.Client(transport=transport, timeout=timeout, headers=self._headers()), self.stats,
            max_attempts=settings.max_attempts, sleep=sleep, clock=clock, **self._pacing(),
        )

    def _headers(self) -> dict[str, str]:
        return {}

    def _pacing(self) -> dict[str, float]:
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.repr_field}={getattr(self.settings, self.repr_field)!r})"

    def close(self) -> None:
        """Close the HTTP client."""
        self.calls.close()
