"""What the sync and async Siro clients share: auth, response classification, retries (paging: `.paging`).

Design notes:
- Every attempt, retries included, first takes a slot from the shared ``RequestPacer``.
- 429 / 5xx / transport errors / malformed bodies are retried with tenacity
  (exponential backoff + jitter, bounded attempts); 400/401/403/404 are not, because
  repeating the same request cannot fix them.
- The token lives only inside a private ``httpx.Auth`` object that is never rendered;
  server-supplied text is scrubbed of it before it reaches a message or a log line.
- Nothing here imports Dagster: the client is usable from scripts and tests alone.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from tenacity import RetryCallState, retry_if_exception_type

from .errors import (
    AUTH_HINT,
    SiroAuthError,
    SiroBadRequestError,
    SiroError,
    SiroMalformedResponseError,
    SiroNotFoundError,
    SiroUnavailableError,
    describe_request,
)
from .pacing import RequestPacer, default_pacer
from .retry import RETRYABLE_STATUS, RetryPolicy
from .shapes import ShapeCheck

__all__ = [
    "CALLER_IDENTITY_PATH",
    "DEFAULT_BASE_URL",
    "RECORDINGS_PATH",
    "BearerAuth",
    "ClientCore",
    "Page",
    "RawPage",
    "RequestStats",
    "TransientFailure",
    "recording_path",
]

logger = logging.getLogger("siro_assets.api_client")

DEFAULT_BASE_URL = "https://functions.siro.ai/api-externalApi"

RECORDINGS_PATH = "/v1/core/recordings"
CALLER_IDENTITY_PATH = "/v1/core/auth/caller-identity"

_USER_AGENT = "siro-assets/0.1 (+httpx)"
_MAX_SERVER_TEXT = 500


@dataclass
class Page:
    """One page of ``GET /v1/core/recordings``.

    ``records`` are the parsed JSON objects exactly as received, ``body`` the raw
    response bytes, and ``cursor`` the cursor for the next page (None on the last).
    """

    records: list[dict]
    body: bytes
    cursor: str | None


@dataclass
class RawPage:
    """One page of ``GET /v1/core/recordings`` left unparsed: the response ``body``,
    the ``cursor`` for the next page (None on the last), what the caller's ``accept``
    function returned for the body, and the seconds from the pacer's grant to the
    response (the request's own latency, without time spent waiting for a slot)."""

    body: bytes
    cursor: str | None
    accepted: Any = None
    latency_seconds: float = 0.0


@dataclass
class RequestStats:
    """Cumulative request counters for a client's lifetime.

    ``requests`` counts attempts (retries included), ``retries`` the attempts that
    were repeated, ``rate_limited`` 429 answers, ``server_errors`` 5xx answers,
    ``pages`` list pages delivered and ``bytes`` response body bytes received.
    """

    requests: int = 0
    pages: int = 0
    retries: int = 0
    rate_limited: int = 0
    server_errors: int = 0
    bytes: int = 0


class BearerAuth(httpx.Auth):
    """Adds the bearer header per request so the token is not stored in client headers."""

    def __init__(self, token: str) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request):
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request

    def scrub(self, text: str) -> str:
        """Remove the token from text that came from outside (server bodies, errors)."""
        if self._token and self._token in text:
            return text.replace(self._token, "***")
        return text

    def __repr__(self) -> str:
        return "<BearerAuth token=***>"


class TransientFailure(Exception):
    """A retryable failure of one attempt; ``kind`` is 'unavailable' or 'malformed'."""

    def __init__(self, kind: str, detail: str, cause: BaseException | None = None) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.cause = cause


def _server_message(response: httpx.Response) -> str:
    """Best-effort human message from an error body (JSON ``message``/``error`` or text)."""
    try:
        payload = json.loads(response.content)
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        for key in ("message", "error", "detail", "errors", "msg"):
            if payload.get(key):
                value = payload[key]
                text = value if isinstance(value, str) else json.dumps(value)
                break
        else:
            text = json.dumps(payload)
    elif payload is not None:
        text = json.dumps(payload)
    else:
        text = response.content.decode("utf-8", errors="replace")
    text = text.strip()
    if len(text) > _MAX_SERVER_TEXT:
        text = text[:_MAX_SERVER_TEXT] + "..."
    return text


def recording_path(recording_id: str, suffix: str = "") -> str:
    """``/v1/core/recordings/{id}`` (plus ``suffix``) with the id percent-encoded."""
    if not isinstance(recording_id, str) or not recording_id:
        raise ValueError("recording_id must be a non-empty string")
    return f"{RECORDINGS_PATH}/{quote(recording_id, safe='')}{suffix}"


class ClientCore:
    """Request classification, retry bookkeeping and stats shared by both clients.

    The sync and async clients add only the I/O: one attempt, the retry loop around it,
    and the endpoint methods.
    """

    def __init__(
        self,
        token: str,
        base_url: str,
        pacer: RequestPacer | None,
        retry: RetryPolicy | None,
        timeout: float,
    ) -> None:
        if not isinstance(token, str):
            raise TypeError("token must be a string")
        # Tokens pasted from files or secret stores often carry a trailing newline;
        # HTTP would refuse that header (and quote the token in its error), so strip
        # whitespace and reject anything else a header cannot carry, without echoing it.
        token = token.strip()
        if not token or not token.isascii() or not token.isprintable():
            raise SiroAuthError(
                "The Siro API token is empty or contains characters an HTTP header cannot "
                f"carry. {AUTH_HINT}"
            )
        self._auth = BearerAuth(token)
        self.base_url = base_url.rstrip("/")
        self.pacer = pacer if pacer is not None else default_pacer()
        self.retry_policy = retry if retry is not None else RetryPolicy()
        self.timeout = timeout
        self.stats = RequestStats()
        self._stats_lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, token=***, "
            f"pacer={self.pacer!r}, retry={self.retry_policy!r})"
        )

    __str__ = __repr__

    def _client_kwargs(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "auth": self._auth,
            "timeout": httpx.Timeout(self.timeout),
            "headers": {"Accept": "application/json", "User-Agent": _USER_AGENT},
        }

    def _bump(self, **deltas: int) -> None:
        with self._stats_lock:
            for name, delta in deltas.items():
                setattr(self.stats, name, getattr(self.stats, name) + delta)

    def _transport_failure(
        self, method: str, path: str, params: Mapping[str, str], exc: httpx.RequestError
    ) -> Exception:
        detail = self._auth.scrub(f"{type(exc).__name__}: {exc}")
        if isinstance(exc, (httpx.UnsupportedProtocol, httpx.LocalProtocolError)):
            # A bad base URL or a request we cannot even send will not fix itself.
            return SiroError(f"{describe_request(method, path, params)} failed: {detail}",
                             method=method, path=path, params=params)
        return TransientFailure("unavailable", detail, cause=exc)

    def _handle_response(
        self,
        method: str,
        path: str,
        params: Mapping[str, str],
        response: httpx.Response,
        shape: ShapeCheck,
        decode: Callable[[bytes], Any] | None = None,
        body: bytes | None = None,
    ) -> tuple[bytes, Any]:
        """Classify one response: the body and its decoded value, or the error to raise.

        By default a 2xx body is parsed as JSON and checked with `shape`; `decode`
        replaces both (raising ``ValueError`` for a body it rejects). `body` is the
        response's content when the caller read it itself (a streamed response).
        """
        body = response.content if body is None else body
        self._bump(bytes=len(body))
        status = response.status_code
        where = describe_request(method, path, params)
        ctx = {"method": method, "path": path, "params": params, "status_code": status}

        if 200 <= status < 300:
            if decode is not None:
                try:
                    return body, decode(body)
                except ValueError as exc:
                    raise TransientFailure(
                        "malformed", f"HTTP {status} body is not a valid page ({len(body)} bytes): "
                        + self._auth.scrub(str(exc))
                    ) from exc
            try:
                parsed = json.loads(body)
            except ValueError as exc:
                raise TransientFailure(
                    "malformed", f"HTTP {status} body is not valid JSON ({len(body)} bytes): {exc}"
                ) from exc
            problem = shape(parsed)
            if problem:
                raise TransientFailure("malformed", f"HTTP {status} body has the wrong shape: {problem}")
            return body, parsed

        if status in (401, 403):
            msg = self._auth.scrub(_server_message(response))
            raise SiroAuthError(f"{where} was rejected with HTTP {status} ({msg}). {AUTH_HINT}", **ctx)
        if status == 404:
            msg = self._auth.scrub(_server_message(response))
            raise SiroNotFoundError(f"{where} returned HTTP 404 ({msg})", **ctx)
        if status == 400:
            msg = self._auth.scrub(_server_message(response))
            raise SiroBadRequestError(f"{where} returned HTTP 400: {msg}", server_message=msg, **ctx)
        if status == 429:
            self._bump(rate_limited=1)
            raise TransientFailure("unavailable", "HTTP 429 (rate limited)")
        if status >= 500:
            self._bump(server_errors=1)
            if status in (501, 505):  # "not implemented" / "version not supported" are final
                raise SiroError(f"{where} returned HTTP {status}", **ctx)
            raise TransientFailure("unavailable", f"HTTP {status}")
        if status in RETRYABLE_STATUS:
            raise TransientFailure("unavailable", f"HTTP {status}")
        msg = self._auth.scrub(_server_message(response))
        raise SiroError(f"{where} returned unexpected HTTP {status} ({msg})", **ctx)

    def _retrying_kwargs(self, method: str, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        policy = self.retry_policy

        def before_sleep(state: RetryCallState) -> None:
            self._bump(retries=1)
            exc = state.outcome.exception() if state.outcome else None
            logger.warning(
                "Siro %s %s params=%s attempt %d/%d failed (%s); retrying in %.2fs",
                method,
                path,
                dict(params),
                state.attempt_number,
                policy.max_attempts,
                exc.detail if isinstance(exc, TransientFailure) else exc,
                state.next_action.sleep if state.next_action else 0.0,
            )

        return {
            "stop": policy.stop(),
            "wait": policy.wait(),
            "retry": retry_if_exception_type(TransientFailure),
            "before_sleep": before_sleep,
            "reraise": True,
        }

    def _exhausted(self, method: str, path: str, params: Mapping[str, str], exc: TransientFailure) -> SiroError:
        attempts = self.retry_policy.max_attempts
        message = (
            f"{describe_request(method, path, params)} failed after {attempts} attempt"
            f"{'s' if attempts != 1 else ''}; last error: {exc.detail}"
        )
        cls = SiroMalformedResponseError if exc.kind == "malformed" else SiroUnavailableError
        return cls(message, method=method, path=path, params=params)

    def _count_page(self) -> None:
        self._bump(pages=1)
