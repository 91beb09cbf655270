"""The four sinks a CRM connection can route to, and the factory that builds them."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timezone

import duckdb
import httpx

from ..config import ConnectionSettings, HttpSettings, HubSpotSettings, OutboxSettings, SalesforceSettings
from .base import DeliveryStopped, Prepared, Sink
from .http import HttpSink
from .hubspot import HubSpotSink
from .outbox import OutboxSink
from .salesforce import SalesforceSink


class SinkFactory:
    """Builds the sink for a connection's settings.

    `transport`, `sleep` and `clock` are for tests (the fake CRMs and fake time).
    """

    def __init__(
        self,
        connect: Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]],
        *,
        run_id: str | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self.connect = connect
        self.run_id = run_id
        self.options = dict(transport=transport, sleep=sleep, clock=clock)
        self.now = now

    def __call__(self, settings: ConnectionSettings) -> Sink:
        """A new sink for `settings`."""
        if isinstance(settings, OutboxSettings):
            return OutboxSink(settings, self.connect, run_id=self.run_id, now=self.now)
        if isinstance(settings, SalesforceSettings):
            return SalesforceSink(settings, **self.options)
        if isinstance(settings, HubSpotSettings):
            return HubSpotSink(settings, **self.options)
        if isinstance(settings, HttpSettings):
            return HttpSink(settings, **self.options)
        raise TypeError(f"no sink for {type(settings).__name__}")


__all__ = [
    "DeliveryStopped",
    "HttpSink",
    "HubSpotSink",
    "OutboxSink",
    "Prepared",
    "SalesforceSink",
    "Sink",
    "SinkFactory",
]
