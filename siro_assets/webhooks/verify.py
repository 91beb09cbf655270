"""Who sent this request: webhook signature verification, one scheme per class.

Siro signs the Svix way, which is the Standard Webhooks scheme under `svix-*` header
names. The `standardwebhooks` library does the HMAC, the constant-time comparison and the
timestamp tolerance; this module only maps header names, turns every library failure into
one `SignatureError`, and keeps the secret out of reprs and messages. Another scheme is
another `Verifier` subclass.
"""

from __future__ import annotations

import base64
import binascii
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from standardwebhooks import Webhook

__all__ = [
    "TOLERANCE",
    "InvalidSecretError",
    "SignatureError",
    "StandardWebhooksVerifier",
    "VerifiedDelivery",
    "Verifier",
]

#: How far a signed timestamp may be from our clock. This is the library's own fixed
#: window (Standard Webhooks' 5 minutes); stated here so tests and docs can name it.
TOLERANCE = timedelta(minutes=5)

SECRET_PREFIX = "whsec_"

# Svix's header names first (what Siro sends), then the Standard Webhooks ones.
_HEADER_SETS = (
    ("svix-id", "svix-timestamp", "svix-signature"),
    ("webhook-id", "webhook-timestamp", "webhook-signature"),
)


class SignatureError(Exception):
    """The request is not proven to come from the endpoint's sender (answer 401).

    The message says which check failed and never contains the secret or the body.
    """


class InvalidSecretError(ValueError):
    """The configured signing secret is not a usable `whsec_...` value (never echoed)."""


@dataclass(frozen=True)
class VerifiedDelivery:
    """What a verified request proves: its message id (the dedupe key) and signed time."""

    message_id: str
    timestamp: int


class Verifier(ABC):
    """One signature scheme, bound to one endpoint's secret."""

    scheme: str = "abstract"

    @abstractmethod
    def verify(self, body: bytes, headers: Mapping[str, str]) -> VerifiedDelivery:
        """Check `body` against the signature `headers`; raise `SignatureError` if it fails."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(scheme={self.scheme!r}, secret=<hidden>)"


def _decoded_secret(secret: str) -> bytes:
    # Checked here, strictly, because the library's decoder skips characters that are not
    # base64 and would quietly turn a mistyped secret into a different key.
    raw = secret.strip().removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSecretError("the webhook secret is not base64 after its whsec_ prefix") from None
    if not key:
        raise InvalidSecretError("the webhook secret is empty")
    return key


def _ordinal(n: int) -> str:
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n if n < 20 else n % 10, 'th')}"


def decoded_secrets(value: str) -> list[bytes]:
    """The keys of a secret variable: one `whsec_` value, or several space separated.

    Several is a rotation: Svix keeps the previous secret valid for 24 hours, so the
    variable holds the new and the old one until the overlap ends. An unusable one is
    named by its position, never echoed.
    """
    parts = value.split()
    if not parts:
        raise InvalidSecretError("the webhook secret is empty")
    keys = []
    for n, part in enumerate(parts, 1):
        try:
            keys.append(_decoded_secret(part))
        except InvalidSecretError as exc:
            raise InvalidSecretError(f"{exc} (the {_ordinal(n)} of {len(parts)} space-separated secrets)"
                                     if len(parts) > 1 else str(exc)) from None
    return keys


class StandardWebhooksVerifier(Verifier):
    """Standard Webhooks / Svix signatures (`v1,<base64 HMAC-SHA256>`), via `standardwebhooks`.

    Accepts `svix-id/-timestamp/-signature` (Siro) or `webhook-*` headers, several
    space-separated signatures (Svix sends one per active secret while a secret rotates),
    and timestamps within `TOLERANCE` of now. The secret may be several space-separated
    `whsec_` values (old and new during a rotation): a request verifies if it is signed
    with any of them, each checked by the library.
    """

    scheme = "standard-webhooks"

    def __init__(self, secret: str) -> None:
        """Bind to a `whsec_...` secret (the value Siro Admin shows for the endpoint), or
        to several space-separated ones while a secret rotates."""
        self._webhooks = tuple(Webhook(key) for key in decoded_secrets(secret))

    def verify(self, body: bytes, headers: Mapping[str, str]) -> VerifiedDelivery:
        """Verify `body` and its headers; returns the message id and signed timestamp."""
        lowered = {k.lower(): v for k, v in headers.items()}
        for names in _HEADER_SETS:
            values = [lowered.get(name) for name in names]
            if all(values):
                break
        else:
            raise SignatureError("missing svix-id, svix-timestamp or svix-signature header")
        msg_id, timestamp, signature = values
        # The library expects Standard Webhooks names; the values are the same scheme.
        standard = {"webhook-id": msg_id, "webhook-timestamp": timestamp, "webhook-signature": signature}
        reason = "malformed signature"
        for webhook in self._webhooks:
            try:
                webhook.verify(body, standard, json_parse=False)
                break
            except Exception as exc:  # noqa: BLE001 - malformed input raises ValueError, binascii.Error, ...
                # Only the library's own messages are passed on ("Message timestamp too old",
                # "No matching signature found"): they name the check, never the key.
                reason = str(exc) if type(exc).__name__ == "WebhookVerificationError" else "malformed signature"
        else:
            raise SignatureError(reason)
        return VerifiedDelivery(message_id=msg_id, timestamp=int(float(timestamp)))
