"""The receiver: a Starlette ASGI app that verifies, validates and stores Siro's webhooks.

Checks run cheapest first, so a forged flood costs one HMAC per request and nothing else:
method (405), content type (415), size (413, judged while reading), signature (401),
schema (400), then the inbox (503 when full). A 2xx goes out only after the inbox
committed. A replayed `svix-id` with a valid signature is answered `200 duplicate` and not
enqueued again: Svix redelivers the same id when our 2xx was lost, and a non-2xx would
make it retry that message for a day and then disable the endpoint. Replays of old
requests are refused by the signature's 5-minute tolerance (401).

The app holds only each endpoint's webhook secret (inside its verifier), never the
Siro API token, and never logs a secret, a header value or a body.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .inbox import Inbox, InboxEvent, InboxFull
from .models import RecordingEvent
from .verify import SignatureError, Verifier

__all__ = ["DEFAULT_MAX_BODY_BYTES", "Endpoint", "create_app"]

logger = logging.getLogger("siro_assets.webhooks")

DEFAULT_MAX_BODY_BYTES = 256 * 1024
#: What a 503 asks the sender to wait; Svix follows its own schedule regardless.
RETRY_AFTER_SECONDS = 60


@dataclass(frozen=True)
class Endpoint:
    """One webhook endpoint: served at `/webhooks/<key_prefix>`, checked by its verifier,
    stored into its own inbox (else the app's shared one)."""

    key_prefix: str
    verifier: Verifier
    inbox: Inbox | None = None


class _Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _is_json(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "application/json"


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _Refused(413, f"body over {limit} bytes")
    body = bytearray()
    # Counted while reading, so a chunked body (no Content-Length) or one that lies about
    # its length is cut off at the limit instead of being buffered whole.
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _Refused(413, f"body over {limit} bytes")
    return bytes(body)


def create_app(endpoints: Sequence[Endpoint], inbox: Inbox | None = None, *,
               max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> Starlette:
    """The receiver for `endpoints` (distinct key prefixes), each storing into its own
    inbox or, for those without one, into `inbox`."""
    by_prefix = {e.key_prefix: e for e in endpoints}
    if len(by_prefix) != len(endpoints):
        raise ValueError("webhook endpoints need distinct key prefixes")
    if any(e.inbox is None for e in endpoints) and inbox is None:
        raise ValueError("every webhook endpoint needs an inbox")
    inbox_of = {e.key_prefix: e.inbox or inbox for e in endpoints}
    inboxes = list({id(box): box for box in inbox_of.values()}.values())

    async def receive(request: Request) -> JSONResponse:
        prefix = request.path_params["key_prefix"]
        try:
            endpoint = by_prefix.get(prefix)
            if endpoint is None:
                raise _Refused(404, "no such webhook endpoint")
            if not _is_json(request.headers.get("content-type", "")):
                raise _Refused(415, "content type must be application/json")
            body = await _read_body(request, max_body_bytes)
            try:
                delivery = endpoint.verifier.verify(body, request.headers)
            except SignatureError as exc:
                raise _Refused(401, f"signature: {exc}") from None
            try:
                event = RecordingEvent.model_validate_json(body)
            except ValidationError as exc:
                fields = sorted({".".join(map(str, e["loc"])) or "body" for e in exc.errors(include_input=False)})
                raise _Refused(400, f"payload does not match the webhook schema at {', '.join(fields)}") from None
            try:
                appended = await run_in_threadpool(
                    inbox_of[prefix].append,
                    InboxEvent(
                        endpoint=prefix,
                        message_id=delivery.message_id,
                        event_type=event.eventType,
                        recording_id=event.recordingId,
                        payload=json.loads(body),  # as signed, unknown fields included
                    ),
                )
            except InboxFull:
                logger.warning("webhook %s on /webhooks/%s refused: inbox full (503)", delivery.message_id, prefix)
                return JSONResponse({"error": "inbox full, retry later"}, status_code=503,
                                    headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
            except Exception as exc:  # noqa: BLE001 - an unreachable store (PostgreSQL down, disk full)
                # Not stored, so no 2xx: a 503 asks the sender to retry, as when full. Only
                # the error's type and message are logged (drivers keep passwords out of them).
                logger.error("webhook %s on /webhooks/%s refused: inbox unavailable (503): %s: %s",
                             delivery.message_id, prefix, type(exc).__name__, exc)
                return JSONResponse({"error": "inbox unavailable, retry later"}, status_code=503,
                                    headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
        except _Refused as refused:
            logger.info("webhook on /webhooks/%s refused (%d): %s", prefix, refused.status, refused.reason)
            return JSONResponse({"error": refused.reason}, status_code=refused.status)
        status = "duplicate" if appended.duplicate else "stored"
        logger.info("webhook %s on /webhooks/%s %s: %s for %s (seq %d)", delivery.message_id, prefix, status,
                    event.eventType, event.recordingId, appended.seq)
        return JSONResponse({"status": status})

    async def health(request: Request) -> JSONResponse:
        try:
            for box in inboxes:
                await run_in_threadpool(box.count)
        except Exception:  # noqa: BLE001 - any inbox failure means "not ready"
            logger.exception("webhook inbox unreadable")
            return JSONResponse({"status": "inbox unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[
        Route("/healthz", health, methods=["GET"]),
        Route("/webhooks/{key_prefix}", receive, methods=["POST"]),
    ])
