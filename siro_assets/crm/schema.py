"""A CRM field's schema, read from Salesforce `describe` or HubSpot `properties`, and
coercion of an extracted value to it.

Coercing before sending turns a request that must fail into a reject with a reason
(`unknown_field`, `not_updateable`, `invalid_value`) and spends no API call or rate
budget on it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from typing import Any

from .values import decimal_text, is_blank, scalar_text
from .writes import INVALID_VALUE, NOT_UPDATEABLE, UNKNOWN_FIELD

# Normalised field kinds.
STRING, NUMBER, INTEGER, BOOLEAN, DATE, DATETIME, PICKLIST, MULTIPICKLIST = (
    "string", "number", "integer", "boolean", "date", "datetime", "picklist", "multipicklist",
)

_SALESFORCE_KINDS = {
    "double": NUMBER, "currency": NUMBER, "percent": NUMBER,
    "int": INTEGER, "long": INTEGER,
    "boolean": BOOLEAN, "date": DATE, "datetime": DATETIME,
    "picklist": PICKLIST, "multipicklist": MULTIPICKLIST,
}
_HUBSPOT_KINDS = {"number": NUMBER, "bool": BOOLEAN, "date": DATE, "datetime": DATETIME}


class Rejection(Exception):
    """A value that cannot be written to a field, with the reason code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class FieldSchema:
    """What a CRM says about one field: its name, kind, and what it accepts."""

    name: str
    kind: str
    updateable: bool = True
    max_length: int | None = None
    options: tuple[str, ...] | None = None
    """Allowed option values; None when the field has no option list."""
    restricted: bool = False
    """Only the listed options are accepted."""
    labels: dict[str, str] = field(default_factory=dict)
    """Option label -> value (HubSpot enumerations are written by value, not label)."""

    def fingerprint(self) -> str:
        """A hash of the schema: a changed field (a new picklist option) re-tries its rejects."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


def salesforce_fields(describe: dict) -> dict[str, FieldSchema]:
    """Fields of a Salesforce `describe` answer, keyed by lower-cased name (names are case-insensitive)."""
    fields = {}
    for f in describe.get("fields") or []:
        kind = _SALESFORCE_KINDS.get(str(f.get("type", "")).lower(), STRING)
        options = None
        if kind in (PICKLIST, MULTIPICKLIST):
            options = tuple(p["value"] for p in f.get("picklistValues") or [] if p.get("active", True))
        fields[f["name"].lower()] = FieldSchema(
            name=f["name"],
            kind=kind,
            updateable=bool(f.get("updateable", False)),
            max_length=(f.get("length") or None) if kind in (STRING, PICKLIST, MULTIPICKLIST) else None,
            options=options,
            restricted=bool(f.get("restrictedPicklist", False)),
        )
    return fields


def hubspot_fields(properties: dict) -> dict[str, FieldSchema]:
    """Properties of a HubSpot `properties` answer, keyed by their (case-sensitive) name."""
    fields = {}
    for p in properties.get("results") or []:
        ptype, field_type = str(p.get("type", "")), str(p.get("fieldType", ""))
        options = labels = None
        if ptype == "enumeration":
            kind = MULTIPICKLIST if field_type == "checkbox" else PICKLIST
            if field_type == "booleancheckbox":
                kind = BOOLEAN
            opts = [o for o in p.get("options") or [] if not o.get("hidden", False)]
            options = tuple(str(o["value"]) for o in opts)
            labels = {str(o.get("label")): str(o["value"]) for o in opts if o.get("label") is not None}
        else:
            kind = _HUBSPOT_KINDS.get(ptype, STRING)
        read_only = bool((p.get("modificationMetadata") or {}).get("readOnlyValue", False))
        fields[p["name"]] = FieldSchema(
            name=p["name"],
            kind=kind,
            updateable=not read_only and not p.get("calculated", False),
            options=options if kind != BOOLEAN else None,
            restricted=kind in (PICKLIST, MULTIPICKLIST),
            labels=labels or {},
        )
    return fields


def find_field(fields: dict[str, FieldSchema], name: str, *, case_sensitive: bool) -> FieldSchema:
    """Look a mapped field name up; `unknown_field` when the CRM has no such field.

    A case-sensitive CRM (HubSpot) still finds a field when the mapping only differs in
    case and exactly one field matches, because the plan treats field names that differ
    only in case as one field.
    """
    name = name.strip()
    if not case_sensitive:
        found = fields.get(name.lower())
    else:
        found = fields.get(name)
        if found is None:
            matches = [f for key, f in fields.items() if key.lower() == name.lower()]
            found = matches[0] if len(matches) == 1 else None
    if found is None:
        raise Rejection(UNKNOWN_FIELD, f"the CRM has no field {name!r} on this object")
    if not found.updateable:
        raise Rejection(NOT_UPDATEABLE, f"field {found.name!r} is read-only")
    return found


def _invalid(field_schema: FieldSchema, value: Any, why: str) -> Rejection:
    shown = json.dumps(value, ensure_ascii=False)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return Rejection(INVALID_VALUE, f"{shown} is not valid for {field_schema.kind} field {field_schema.name!r}: {why}")


def _number(field_schema: FieldSchema, value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _invalid(field_schema, value, "not a number")
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text) if text.lstrip("+-").isdigit() else float(text)
        except ValueError:
            raise _invalid(field_schema, value, "not a number") from None
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        raise _invalid(field_schema, value, "not a finite number")
    if field_schema.kind == INTEGER:
        if isinstance(value, float) and not value.is_integer():
            raise _invalid(field_schema, value, "not a whole number")
        return int(value)
    return value


def _boolean(field_schema: FieldSchema, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _invalid(field_schema, value, "not true or false")


def _date(field_schema: FieldSchema, value: Any) -> str:
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                return date.fromisoformat(text).isoformat()
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise _invalid(field_schema, value, "not a YYYY-MM-DD date") from None
        if moment.tzinfo is not None:
            moment = moment.astimezone(timezone.utc)
        if field_schema.kind == DATE:
            return moment.date().isoformat()
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    raise _invalid(field_schema, value, "not a YYYY-MM-DD date")


def _option(field_schema: FieldSchema, text: str) -> str:
    options = field_schema.options or ()
    if text in options:
        return text
    folded = [o for o in options if o.lower() == text.lower()]
    if len(folded) == 1:
        return folded[0]
    if text in field_schema.labels:
        return field_schema.labels[text]
    if field_schema.restricted:
        raise _invalid(field_schema, text, "not one of the field's options")
    return text


def _text(field_schema: FieldSchema, text: str) -> str:
    if field_schema.max_length is not None and len(text) > field_schema.max_length:
        raise _invalid(field_schema, text, f"{len(text)} characters, the field holds {field_schema.max_length}")
    return text


def coerce(value: Any, field_schema: FieldSchema) -> Any:
    """`value` in the field's type, or a `Rejection` (`invalid_value`) saying why not.

    Numbers, booleans and dates are parsed from text; picklist values are matched to an
    option (case-insensitively, or by label); a multi-select takes an array or a
    `;`-joined string; text longer than the field holds is rejected, not truncated.
    A number bound for text is its JSON text (`1e21` -> `"1e+21"`); blank elements of
    an array are dropped. A null is returned as it is (only a connection with
    `write_nulls` is ever given one, as a clear).
    """
    kind = field_schema.kind
    if value is None:
        return None
    if kind in (NUMBER, INTEGER):
        return _number(field_schema, value)
    if kind == BOOLEAN:
        return _boolean(field_schema, value)
    if kind in (DATE, DATETIME):
        return _date(field_schema, value)
    if kind == MULTIPICKLIST:
        items = value if isinstance(value, list) else str(value).split(";") if isinstance(value, str) else [value]
        chosen = [_option(field_schema, scalar_text(v).strip()) for v in items if not is_blank(v)]
        return _text(field_schema, ";".join(dict.fromkeys(c for c in chosen if c)))
    if isinstance(value, list):
        items = [v for v in value if not is_blank(v)]
        if kind == PICKLIST:
            if len(items) != 1:
                raise _invalid(field_schema, value, "a single-select field takes one value")
            return _text(field_schema, _option(field_schema, scalar_text(items[0])))
        return _text(field_schema, ";".join(scalar_text(v) for v in items))
    text = scalar_text(value)
    if kind == PICKLIST:
        return _text(field_schema, _option(field_schema, text))
    return _text(field_schema, text)


__all__ = [
    "FieldSchema",
    "Rejection",
    "coerce",
    "decimal_text",
    "find_field",
    "hubspot_fields",
    "salesforce_fields",
]
