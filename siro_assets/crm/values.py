"""How a value is written on each CRM's wire.

Salesforce takes JSON strings, numbers and booleans; HubSpot takes strings only. Both
take a multi-select as one `;`-joined string. In an array a string element is written as
it is, a number or boolean as its JSON text, and a null element is dropped.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any


def decimal_text(number: int | float) -> str:
    """A number as plain decimal text: `42`, `1234.75`, never `1e+20` or `42.0`."""
    if isinstance(number, bool):
        raise TypeError("a boolean is not a number")
    if isinstance(number, int):
        return str(number)
    if not math.isfinite(number):
        raise ValueError(f"{number!r} is not a finite number")
    if number.is_integer():
        return str(int(number))
    # repr gives the shortest text that round-trips; Decimal drops the exponent form.
    return format(Decimal(repr(number)), "f")


def scalar_text(value: Any) -> str:
    """A string as it is; a number or boolean as its JSON text; anything else as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return decimal_text(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def join_array(items: list[Any]) -> str:
    """Array elements joined with `;`, null elements dropped."""
    return ";".join(scalar_text(item) for item in items if item is not None)


def salesforce_wire(value: Any) -> Any:
    """A coerced value as Salesforce's JSON wants it (arrays become `;`-joined text)."""
    if isinstance(value, list):
        return join_array(value)
    return value


def hubspot_wire(value: Any) -> str:
    """A coerced value as HubSpot's string wire format wants it; null clears (`""`)."""
    if value is None:
        return ""
    if isinstance(value, list):
        return join_array(value)
    return scalar_text(value)
