"""Which extracted values are blank, and how a value is written on each CRM's wire.

A **blank** value means "nothing extracted": null, a string that is empty or only
whitespace, `[]`, or an array whose elements are all blank. `0`, `False` and `"0"` are
values. A blank never competes for a CRM field and is never sent; the one exception is
a JSON null to a connection with `write_nulls: true`, which is sent as that CRM's clear.
The plan applies the same rule in SQL (`transforms.sql_fragments.IS_BLANK`).

Salesforce takes JSON strings, numbers and booleans; HubSpot takes strings only. Both
take a multi-select as one `;`-joined string. In an array a string element is written as
it is, a number or boolean as its JSON text, and a blank element is dropped. A number
bound for a text field is its JSON text (`1e21` -> `"1e+21"`, `10.0` -> `"10"`), so the
CRM never formats a number its own way; a number bound for a HubSpot number property is
plain decimal text, the only form HubSpot parses.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any


def is_blank(value: Any) -> bool:
    """True for null, an empty or whitespace-only string, `[]`, or an array of blanks.

    Whitespace is Python's (`str.isspace`), which the SQL twin matches character for
    character. Objects, numbers (0 included) and booleans (False included) are not blank.
    """
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list):
        return all(is_blank(item) for item in value)
    return False


def is_sendable(value: Any, *, write_nulls: bool) -> bool:
    """A value that may go to a CRM: not blank, or a JSON null to a connection that clears."""
    return not is_blank(value) or (value is None and write_nulls)


def decimal_text(number: int | float) -> str:
    """A number as plain decimal text: `42`, `1234.75`, never `1e+20` or `42.0`."""
    return _number_text(number, plain=True)


def json_number_text(number: int | float) -> str:
    """A number as JSON text, as `JSON.stringify` writes it: `10`, `2.5`, `1e+21`, `1e-7`.

    Integers keep every digit. A float is its shortest round-trip digits, in plain
    notation for magnitudes in [1e-6, 1e21) and in exponent form outside them, the
    ECMAScript rule every JSON producer and reader of these values shares.
    """
    return _number_text(number, plain=False)


def _number_text(number: int | float, *, plain: bool) -> str:
    """The one walk behind both: a float's shortest round-trip digits, placed in plain
    notation (always, with `plain`) or in ECMAScript's (exponent form outside [1e-6, 1e21))."""
    if isinstance(number, bool):
        raise TypeError("a boolean is not a number")
    if isinstance(number, int):
        return str(number)
    if not math.isfinite(number):
        raise ValueError(f"{number!r} is not a finite number")
    if number == 0:
        return "0"
    _, digit_tuple, exponent = Decimal(repr(abs(number))).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    # The value is 0.<digits> x 10^point, as ECMAScript's Number::toString states it.
    point = len(digit_tuple) + exponent
    k = len(digits)
    prefix = "-" if number < 0 else ""
    if k <= point and (plain or point <= 21):
        return prefix + digits + "0" * (point - k)
    if 0 < point < k:
        return prefix + digits[:point] + "." + digits[point:]
    if point <= 0 and (plain or point > -6):
        return prefix + "0." + "0" * -point + digits
    mantissa = digits[0] + ("." + digits[1:] if k > 1 else "")
    return f"{prefix}{mantissa}e{'+' if point - 1 >= 0 else '-'}{abs(point - 1)}"


def scalar_text(value: Any) -> str:
    """A string as it is; a number or boolean as its JSON text; anything else as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json_number_text(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def join_array(items: list[Any]) -> str:
    """Array elements joined with `;`, blank elements dropped."""
    return ";".join(scalar_text(item) for item in items if not is_blank(item))


def salesforce_wire(value: Any) -> Any:
    """A coerced value as Salesforce's JSON wants it (arrays become `;`-joined text).

    A null stays a JSON null: Salesforce's clear, sent only when the connection opts in.
    """
    if isinstance(value, list):
        return join_array(value)
    return value


def hubspot_wire(value: Any) -> str:
    """A coerced value as HubSpot's string wire format wants it.

    A null (sent only when the connection opts in) becomes `""`, HubSpot's documented
    clear; an extracted blank string never gets this far. A number left after coercion
    is bound for a number property, which takes plain decimal text only.
    """
    if value is None:
        return ""
    if isinstance(value, list):
        return join_array(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return decimal_text(value)
    return scalar_text(value)
