"""The fake CRMs in-process, as an httpx transport (no port)."""

from __future__ import annotations

import httpx

from .common import LostResponse
from .router import FakeCrms


class FakeCrmTransport(httpx.BaseTransport):
    """Serves `FakeCrms` to an `httpx.Client`; a lost response is a dropped connection."""

    def __init__(self, crms: FakeCrms) -> None:
        self.crms = crms

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Answer synchronously."""
        origin = f"{request.url.scheme}://{request.url.netloc.decode()}"
        try:
            status, headers, body = self.crms.handle(
                request.method, request.url.raw_path.decode().split("?")[0], dict(request.headers),
                request.read(), origin,
            )
        except LostResponse:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request) from None
        return httpx.Response(status, headers=headers, content=body, request=request)
