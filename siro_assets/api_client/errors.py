"""Exceptions raised by the Siro API client.

Messages name the HTTP method, path and query parameters so a failure can be
reproduced; they never contain the API token (the token is not a query parameter
and headers are never rendered).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "SiroError",
    "SiroAuthError",
    "SiroNotFoundError",
    "SiroBadRequestError",
    "SiroUnavailableError",
    "SiroMalformedResponseError",
    "describe_request",
]

AUTH_HINT = (
    "The Siro external API needs an organization integration token "
    "(Siro admin -> Person icon -> API Tokens), provided via SIRO_API_TOKEN; "
    "the OAuth access token used with api.siro.ai user-scoped endpoints does not work here."
)


def describe_request(method: str, path: str, params: Mapping[str, str] | None) -> str:
    """Render ``METHOD path {params}`` for error and log messages."""
    if params:
        rendered = ", ".join(f"{k}={v}" for k, v in params.items())
        return f"{method} {path} [{rendered}]"
    return f"{method} {path}"


class SiroError(Exception):
    """Base class for every error raised by the Siro client."""

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        path: str | None = None,
        params: Mapping[str, str] | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.method = method
        self.path = path
        self.params = dict(params) if params else {}
        self.status_code = status_code


class SiroAuthError(SiroError):
    """401/403: the token is missing, wrong, revoked or lacks access. Never retried."""


class SiroNotFoundError(SiroError):
    """404: the recording (or endpoint) does not exist."""


class SiroBadRequestError(SiroError):
    """400: the server rejected the parameters; ``server_message`` holds its explanation."""

    def __init__(self, message: str, *, server_message: str | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.server_message = server_message


class SiroUnavailableError(SiroError):
    """Retries exhausted on 429 / 5xx / timeouts / connection errors."""


class SiroMalformedResponseError(SiroError):
    """The body was not JSON or not the documented shape, even after retries."""
