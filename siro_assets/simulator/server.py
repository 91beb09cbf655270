"""Serve a :class:`SimulatorApi` over HTTP with Starlette + uvicorn."""

from __future__ import annotations

import asyncio
import logging
import random
import signal
import threading
import time
from typing import Callable

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from .api import SimulatedDisconnect, SimulatorApi
from .transport import api_path

__all__ = ["create_app", "run_in_thread", "make_server"]

_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class _DropSimulatedDisconnects(logging.Filter):
    """Keep uvicorn from logging a traceback for every deliberate connection drop."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        while exc is not None:
            if isinstance(exc, SimulatedDisconnect):
                return False
            exc = exc.__cause__ or exc.__context__
        return True


logging.getLogger("uvicorn.error").addFilter(_DropSimulatedDisconnects())


async def _abort_body():
    # Raising after the response has started makes uvicorn close the socket mid-response,
    # so the client sees a dropped connection rather than a well-formed error.
    raise SimulatedDisconnect("simulated connection drop")
    yield b""  # pragma: no cover - makes this an async generator


def create_app(api: SimulatorApi, *, latency_jitter: float = 0.0) -> Starlette:
    """A Starlette app whose single catch-all route delegates to ``api.handle``.

    Each response waits ``api.faults.latency`` seconds, give or take up to
    ``latency_jitter`` (uniformly), like a real network round trip.
    """
    jitter = random.Random(0)

    async def endpoint(request: Request) -> Response:
        delay = api.faults.latency + (jitter.uniform(-latency_jitter, latency_jitter) if latency_jitter else 0.0)
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            status, headers, body = await run_in_threadpool(
                api.handle,
                request.method,
                api_path(request.url.path),
                list(request.query_params.multi_items()),
                dict(request.headers),
            )
        except SimulatedDisconnect:
            return StreamingResponse(_abort_body(), status_code=200, headers={"content-length": "1000"})
        return Response(content=body, status_code=status, headers=headers)

    return Starlette(routes=[Route("/{path:path}", endpoint, methods=_METHODS)])


def make_server(
    api: SimulatorApi, host: str = "127.0.0.1", port: int = 0, *, latency_jitter: float = 0.0
) -> uvicorn.Server:
    """A configured (not started) uvicorn server for ``api``."""
    config = uvicorn.Config(
        create_app(api, latency_jitter=latency_jitter), host=host, port=port, log_level="warning", lifespan="off", access_log=False
    )
    return uvicorn.Server(config)


def _bound_port(server: uvicorn.Server) -> int:
    for s in getattr(server, "servers", []) or []:
        for sock in s.sockets:
            return int(sock.getsockname()[1])
    raise RuntimeError("uvicorn has no listening socket")


def run_in_thread(
    api: SimulatorApi,
    host: str = "127.0.0.1",
    port: int = 0,
    timeout: float = 10.0,
    *,
    latency_jitter: float = 0.0,
) -> tuple[str, Callable[[], None]]:
    """Start uvicorn for ``api`` in a daemon thread and wait until it accepts connections.

    ``port=0`` lets the OS pick a free port. Returns ``(base_url, stop)``; ``stop()`` shuts the
    server down and joins the thread (idempotent).
    """
    server = make_server(api, host, port, latency_jitter=latency_jitter)
    thread = threading.Thread(target=server.run, name="siro-simulator", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("simulator server failed to start")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise TimeoutError("simulator server did not start in time")
        time.sleep(0.005)
    bound = _bound_port(server)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)

    return f"http://{host}:{bound}", stop


def serve_until_signalled(stop: Callable[[], None]) -> None:
    """Block until SIGINT or SIGTERM, then `stop` the server (the `python -m` entry points)."""
    done = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: done.set())
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    while not done.wait(0.5):
        pass
    stop()
