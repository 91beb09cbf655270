"""Scrub every configured secret out of text before it reaches a log, metadata or a table.

Secrets are registered where they are resolved: the Siro API token
(`defs/resources.py`), the CRM client ids, client secrets and tokens when CRM settings
are validated (`crm/config.py`), a Salesforce session token when it is issued, and the
lake catalog's password and S3 keys when `LakeSettings` are built (`warehouse/lake.py`). Any
text built from outside input (an exception, a CRM's answer) goes through `scrub`, which
replaces every registered secret, in the forms it takes when echoed (plain, URL-encoded,
JSON-escaped), with `***`.

The registry is per process, like the environment the secrets come from: text from one
CRM connection is scrubbed of every other connection's secrets and of the Siro token too.
Imports nothing from the project, so every package may use it.
"""

from __future__ import annotations

import json
import threading
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_LENGTH = 4
"""Shorter values are not masked: replacing every "ab" would garble messages, and a
secret that short protects nothing."""

_lock = threading.Lock()
_secrets: frozenset[str] = frozenset()
_forms: tuple[str, ...] = ()


def _echoed_forms(secret: str) -> set[str]:
    # How a secret shows up in an error: as is, in a form body or query, inside JSON,
    # or in the repr of the header bytes httpx refused (b'Bearer tok\n').
    forms = {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1],
             repr(secret.encode("utf-8", "backslashreplace"))[2:-1]}
    return {f for f in forms if len(f) >= MIN_LENGTH}


def register(*secrets: str | None) -> None:
    """Remember secrets to scrub from now on (blank and short values are ignored)."""
    global _secrets, _forms
    new = {s for s in secrets if isinstance(s, str) and len(s.strip()) >= MIN_LENGTH}
    new |= {s.strip() for s in new}
    with _lock:
        if new <= _secrets:
            return
        _secrets = _secrets | new
        forms = set().union(*(_echoed_forms(s) for s in _secrets))
        # Longest first, so a secret that contains another is masked whole.
        _forms = tuple(sorted(forms, key=len, reverse=True))


def scrub(text: str | None) -> str | None:
    """`text` with every registered secret replaced by `***` (None stays None)."""
    if not text:
        return text
    for form in _forms:
        if form in text:
            text = text.replace(form, MASK)
    return text


def describe(exc: BaseException) -> str:
    """`Type: message` of an exception, scrubbed."""
    return scrub(f"{type(exc).__name__}: {exc}") or type(exc).__name__
