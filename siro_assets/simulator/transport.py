"""An httpx transport that answers requests from a :class:`SimulatorApi` in-process (no port)."""

from __future__ import annotations

import asyncio
import time

import httpx

from .api import SimulatedDisconnect, SimulatorApi

__all__ = ["SimulatorTransport", "api_path"]


def api_path(path: str) -> str:
    """Strip any base-URL path prefix, so ``/api-externalApi/v1/core/x`` becomes ``/v1/core/x``."""
    idx = path.find("/v1/")
    return path[idx:] if idx >= 0 else path


class SimulatorTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Both a sync and an async httpx transport backed by ``api``.

    A ``disconnect`` fault raises ``httpx.RemoteProtocolError`` like a dropped connection;
    ``FaultConfig.latency`` is waited before each answer, with the api's injectable ``sleep``.
    """

    def __init__(self, api: SimulatorApi) -> None:
        """Wrap ``api``; works with any ``base_url`` (e.g. ``http://sim``)."""
        self.api = api

    def _call(self, request: httpx.Request) -> httpx.Response:
        try:
            status, headers, body = self.api.handle(
                request.method,
                api_path(request.url.path),
                request.url.params.multi_items(),
                dict(request.headers),
            )
        except SimulatedDisconnect:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request) from None
        return httpx.Response(status, headers=headers, content=body, request=request)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Synchronous request handling (``httpx.Client``)."""
        if self.api.faults.latency > 0:
            self.api.sleep(self.api.faults.latency)
        return self._call(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Asynchronous request handling (``httpx.AsyncClient``)."""
        if self.api.faults.latency > 0:
            if self.api.sleep is time.sleep:
                await asyncio.sleep(self.api.faults.latency)
            else:
                self.api.sleep(self.api.faults.latency)  # a fake clock: nothing to wait for
        return self._call(request)

    def close(self) -> None:
        """Nothing to release."""

    async def aclose(self) -> None:
        """Nothing to release."""
