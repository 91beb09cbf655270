"""The fake CRMs over HTTP on 127.0.0.1 (Starlette + uvicorn), for end-to-end runs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from .common import LostResponse
from .router import FakeCrms

_METHODS = ["GET", "POST", "PATCH", "PUT", "DELETE"]


async def _drop():
    # Failing after the headers are out makes uvicorn close the socket mid-response.
    raise ConnectionAbortedError("simulated dropped connection")
    yield b""  # pragma: no cover - makes this an async generator


def create_app(crms: FakeCrms) -> Starlette:
    """A Starlette app that hands every request to `crms`."""

    async def endpoint(request: Request) -> Response:
        body = await request.body()
        origin = f"{request.url.scheme}://{request.url.netloc}"
        try:
            status, headers, content = await run_in_threadpool(
                crms.handle, request.method, request.scope.get("raw_path", b"").decode() or request.url.path,
                dict(request.headers), body, origin,
            )
        except LostResponse:
            return StreamingResponse(_drop(), status_code=200, headers={"content-length": "1000"})
        return Response(content=content, status_code=status, headers=headers)

    return Starlette(routes=[Route("/{path:path}", endpoint, methods=_METHODS)])


def run_in_thread(crms: FakeCrms, host: str = "127.0.0.1", port: int = 0, timeout: float = 10.0) -> tuple[str, Callable[[], None]]:
    """Serve `crms` from a daemon thread; returns (base URL, stop)."""
    config = uvicorn.Config(create_app(crms), host=host, port=port, log_level="critical", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="fake-crms", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("fake CRM server did not start")
        time.sleep(0.005)
    bound = server.servers[0].sockets[0].getsockname()[1]

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)

    return f"http://{host}:{bound}", stop
