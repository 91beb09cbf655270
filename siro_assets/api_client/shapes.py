"""What a successful response body must look like, per endpoint, and how to unwrap it.

A shape check returns None for a body it accepts and a short reason otherwise; the client
treats a wrong shape like a truncated body (retried, then ``SiroMalformedResponseError``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

__all__ = [
    "ShapeCheck",
    "list_of_objects_shape",
    "list_page_cursor",
    "list_page_shape",
    "object_shape",
    "recording_shape",
    "unwrap_list",
    "unwrap_recording",
]

#: Takes a parsed JSON body; returns None if it has the expected shape, else the problem.
ShapeCheck = Callable[[Any], str | None]


def list_page_shape(obj: Any) -> str | None:
    """A list page: ``{"data": [objects], "cursor": string or null}``."""
    if not isinstance(obj, dict):
        return f"expected a JSON object, got {type(obj).__name__}"
    data = obj.get("data")
    if not isinstance(data, list):
        return "expected a 'data' list"
    if not all(isinstance(item, dict) for item in data):
        return "every item of 'data' must be a JSON object"
    cursor = obj.get("cursor")
    if cursor is not None and not isinstance(cursor, str):
        return f"'cursor' must be a string or null, got {type(cursor).__name__}"
    return None


# The API writes the cursor as the page's last member. In valid JSON the final `}`
# closes the top-level object, so a member right before it, preceded by `{` or `,`
# (never by the backslash of an escaped quote) and with a value free of quotes and
# backslashes, is the top-level `cursor`; anything else takes the full parse.
_CURSOR_AT_END = re.compile(rb'[{,]\s*"cursor"\s*:\s*(?:null|"([^"\\]*)")\s*\}\s*\Z')
# Cursors are short; a longer tail than this is not worth scanning.
_TAIL_BYTES = 4096


def list_page_cursor(body: bytes) -> str | None:
    """The `cursor` of a list-page body, read without parsing the records.

    A body whose tail is a top-level `"cursor": string or null` member costs a regex
    over its last few KB; any other body is parsed whole and shape-checked (raising
    ``ValueError`` for one that is not a list page). The records themselves are left
    for the caller's own parse, which must reject a body that is not valid JSON.
    """
    match = _CURSOR_AT_END.search(body[-_TAIL_BYTES:]) if body.lstrip()[:1] == b"{" else None
    if match is not None:
        return match.group(1).decode("utf-8") if match.group(1) is not None else None
    parsed = json.loads(body)
    problem = list_page_shape(parsed)
    if problem:
        raise ValueError(problem)
    return parsed.get("cursor")


def object_shape(obj: Any) -> str | None:
    """Any JSON object."""
    if not isinstance(obj, dict):
        return f"expected a JSON object, got {type(obj).__name__}"
    return None


def recording_shape(obj: Any) -> str | None:
    """A recording, bare or in a ``{"data": {...}}`` envelope."""
    problem = object_shape(obj)
    if problem is None and "id" not in obj and not isinstance(obj.get("data"), dict):
        return "expected a recording object"
    return problem


def list_of_objects_shape(obj: Any) -> str | None:
    """A JSON array of objects, bare or in a ``{"data": [...]}`` envelope."""
    if isinstance(obj, dict) and isinstance(obj.get("data"), list):
        obj = obj["data"]
    if not isinstance(obj, list) or not all(isinstance(item, dict) for item in obj):
        return "expected a JSON array of objects"
    return None


def unwrap_recording(obj: dict) -> dict:
    """The recording object of a body :func:`recording_shape` accepted."""
    # The spec returns the object bare; tolerate a {"data": {...}} envelope too.
    if "id" not in obj and isinstance(obj.get("data"), dict):
        return obj["data"]
    return obj


def unwrap_list(obj: Any) -> list:
    """The array of a body :func:`list_of_objects_shape` accepted."""
    return obj["data"] if isinstance(obj, dict) else obj
