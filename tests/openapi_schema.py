"""Validators for Siro's published OpenAPI 3.0 document (a copy lives in tests/reference/).

OpenAPI 3.0 schema objects are JSON Schema draft 4 plus a few keywords; the one that
changes what validates is ``nullable``. It only has an effect next to ``type`` (OpenAPI
3.0.3, "nullable"), where it adds ``"null"`` to the allowed types, so
:func:`to_json_schema` rewrites it that way before :mod:`jsonschema` sees the document.
``$ref``s are resolved by a :mod:`referencing` registry holding the whole document.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

OPENAPI_PATH = Path(__file__).parent / "reference" / "siro-recordings-openapi.json"
_URI = "urn:siro-recordings-openapi"

LIST_PATH = "/v1/core/recordings"
RECORDING_PATH = "/v1/core/recordings/{id}"
SUMMARIES_PATH = "/v1/core/recordings/{id}/summaries"
CALLER_IDENTITY_PATH = "/v1/core/auth/caller-identity"


def load_openapi() -> dict[str, Any]:
    """The published OpenAPI document, as stored in the repository."""
    return json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))


def to_json_schema(node: Any) -> Any:
    """A copy of an OpenAPI 3.0 document (or any part of it) with ``nullable`` rewritten
    into draft-4 JSON Schema: ``{"type": T, "nullable": true}`` becomes
    ``{"type": [T, "null"]}`` (and ``null`` joins an ``enum``); ``nullable`` without a
    ``type`` constrains nothing and is dropped."""
    if isinstance(node, list):
        return [to_json_schema(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_json_schema(v) for k, v in node.items()}
    if out.get("nullable") is True:
        del out["nullable"]
        if "type" in out:
            types = out["type"] if isinstance(out["type"], list) else [out["type"]]
            out["type"] = [*types, "null"]
            if "enum" in out and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
    elif out.get("nullable") is False:
        del out["nullable"]
    return out


def _pointer(*parts: str) -> str:
    return "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def response_pointer(path: str, status: str = "200") -> str:
    """JSON pointer to the response body schema of ``GET path``."""
    return _pointer("paths", path, "get", "responses", status, "content", "application/json", "schema")


def allow_unlinked_crm_null(doc: dict[str, Any]) -> dict[str, Any]:
    """The one documented exception: ``crm`` is null until a recording has a confirmed CRM
    link (get-recordings.txt), although the schema types it as a plain object."""
    doc = copy.deepcopy(doc)
    responses = doc["paths"]
    recording_schemas = [
        responses[LIST_PATH]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["data"]["items"],
        responses[RECORDING_PATH]["get"]["responses"]["200"]["content"]["application/json"]["schema"],
    ]
    for schema in recording_schemas:
        schema["properties"]["crm"]["nullable"] = True
    return doc


def response_validators(doc: dict[str, Any]) -> dict[str, jsonschema.Draft4Validator]:
    """A draft-4 validator per endpoint path for its 200 body, over the converted ``doc``."""
    contents = to_json_schema(doc)
    registry = Registry().with_resource(_URI, Resource.from_contents(contents, default_specification=DRAFT4))
    return {
        path: jsonschema.Draft4Validator(
            {"$ref": _URI + response_pointer(path)},
            registry=registry,
            format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER,
        )
        for path in (LIST_PATH, RECORDING_PATH, SUMMARIES_PATH, CALLER_IDENTITY_PATH)
    }


def problems(validator: jsonschema.Draft4Validator, instance: Any, limit: int = 5) -> list[str]:
    """Up to ``limit`` readable schema violations of ``instance`` (``[]`` when it is valid)."""
    out = []
    for error in validator.iter_errors(instance):
        where = "/".join(map(str, error.absolute_path)) or "<root>"
        out.append(f"{where}: {error.message}")
        if len(out) >= limit:
            break
    return out
