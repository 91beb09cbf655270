"""Wire formats per CRM and coercion of extracted values to a field's schema."""

from __future__ import annotations

from decimal import Decimal

import pytest

from siro_assets.crm.schema import (
    BOOLEAN, DATE, INTEGER, MULTIPICKLIST, NUMBER, PICKLIST, STRING, FieldSchema, Rejection, coerce, find_field,
    hubspot_fields, salesforce_fields,
)
from siro_assets.crm.values import (
    decimal_text, hubspot_wire, is_blank, is_sendable, join_array, json_number_text, salesforce_wire,
)
from fake_crms.schemas import HUBSPOT_OBJECTS, SALESFORCE_OBJECTS


@pytest.mark.parametrize("number, text", [
    (42, "42"), (-3, "-3"), (1234.75, "1234.75"), (42.0, "42"), (1e20, "100000000000000000000"),
    (1e-7, "0.0000001"), (0.1 + 0.2, "0.30000000000000004"),
])
def test_decimal_text_never_uses_exponents(number, text):
    assert decimal_text(number) == text


@pytest.mark.parametrize("value", [
    None, "", " ", "\t\n\r", "\u00a0\u2003\u3000", [], [""], [None, None], ["", " ", None], [[], [""], [[None]]],
])
def test_blank_values(value):
    assert is_blank(value)
    assert not is_sendable(value, write_nulls=False)


@pytest.mark.parametrize("value", [
    0, 0.0, False, "0", "false", "null", "a", " a ", "\u200b", [0], [False], ["", "x"], [None, 0], {}, {"a": None}, [{}],
])
def test_values_that_are_not_blank(value):
    # Zero, false and the text "0" are real extractions: a CRM field may well hold them.
    assert not is_blank(value)
    assert is_sendable(value, write_nulls=False)


def test_only_a_json_null_is_sent_and_only_to_a_connection_that_clears():
    assert is_sendable(None, write_nulls=True) and not is_sendable(None, write_nulls=False)
    for blank in ("", "  ", [], [""], [None]):
        assert not is_sendable(blank, write_nulls=True)


@pytest.mark.parametrize("number, text", [
    (1e21, "1e+21"), (1.5e300, "1.5e+300"), (1e20, "100000000000000000000"), (10.0, "10"), (2.5, "2.5"),
    (-0.0, "0"), (1e-7, "1e-7"), (1e-6, "0.000001"), (-123.456, "-123.456"), (10**30, str(10**30)),
    (0.1 + 0.2, "0.30000000000000004"),
])
def test_json_number_text_is_what_json_stringify_writes(number, text):
    assert json_number_text(number) == text


@pytest.mark.parametrize("number", [1e23, 1.2345678901234567e30, 2.0**70, 1e21, 1e-7, 123.456, -5e-324])
def test_plain_and_json_number_text_name_the_same_digits(number):
    # One walk over the shortest round-trip digits: a float past 2**53 is never written
    # with the binary tail its int() carries (1e23 is not 99999999999999991611392).
    assert Decimal(decimal_text(number)) == Decimal(json_number_text(number))
    assert float(decimal_text(number)) == number and "e" not in decimal_text(number)


def test_a_number_bound_for_text_is_its_json_text():
    assert coerce(1e21, field(STRING)) == "1e+21"
    assert coerce([1e21, "", 2], field(STRING)) == "1e+21;2"
    assert hubspot_wire(coerce(1e21, field(STRING))) == "1e+21"
    # A number property still takes plain decimal text, the only form HubSpot parses.
    assert hubspot_wire(coerce(1e21, field(NUMBER))) == "1000000000000000000000"
    assert salesforce_wire(coerce(1e21, field(NUMBER))) == 1e21


def test_arrays_join_with_semicolons_dropping_nulls():
    assert join_array(["red", None, 1, True, 2.5, False, "a;b"]) == "red;1;true;2.5;false;a;b"
    assert join_array([None]) == ""
    assert join_array(["a", "", " ", None, "b"]) == "a;b"   # blank elements are dropped too
    assert salesforce_wire(["x", None, 2]) == "x;2"
    assert salesforce_wire(3.5) == 3.5 and salesforce_wire(True) is True


def test_hubspot_wire_is_strings():
    assert [hubspot_wire(v) for v in (True, False, 7, 2.50, "s", ["a", None, 1], None)] == [
        "true", "false", "7", "2.5", "s", "a;1", ""]


def field(kind, **kw):
    return FieldSchema(name="F", kind=kind, **kw)


@pytest.mark.parametrize("kind, value, expected", [
    (NUMBER, "42", 42), (NUMBER, " 2.5 ", 2.5), (NUMBER, 7, 7), (INTEGER, 3.0, 3),
    (BOOLEAN, "False", False), (BOOLEAN, True, True),
    (DATE, "2026-03-04", "2026-03-04"), (DATE, "2026-03-04T23:30:00-02:00", "2026-03-05"),
    (STRING, 10.0, "10"), (STRING, ["a", None, 3], "a;3"), (STRING, False, "false"),
])
def test_coercion_to_the_field_type(kind, value, expected):
    got = coerce(value, field(kind))
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize("kind, value", [
    (NUMBER, "abc"), (NUMBER, True), (NUMBER, [1]), (INTEGER, 2.5), (BOOLEAN, "yes"), (BOOLEAN, 1),
    (DATE, "next week"), (DATE, 20260304),
])
def test_values_that_cannot_fit_are_invalid(kind, value):
    with pytest.raises(Rejection) as exc:
        coerce(value, field(kind))
    assert exc.value.code == "invalid_value" and "'F'" in exc.value.message


def test_picklists_match_options_case_and_labels():
    stage = field(PICKLIST, options=("Closed Won", "Prospecting"), restricted=True, labels={"Won!": "Closed Won"})
    assert coerce("closed won", stage) == "Closed Won"
    assert coerce("Won!", stage) == "Closed Won"
    assert coerce(["Prospecting", None], stage) == "Prospecting"
    with pytest.raises(Rejection):
        coerce("Maybe", stage)
    with pytest.raises(Rejection):
        coerce(["Prospecting", "Closed Won"], stage)
    open_list = field(PICKLIST, options=("A",), restricted=False)
    assert coerce("Other", open_list) == "Other"
    multi = field(MULTIPICKLIST, options=("Roof", "HVAC"), restricted=True)
    assert coerce(["roof", None, "HVAC", "Roof"], multi) == "Roof;HVAC"
    assert coerce("HVAC;roof", multi) == "HVAC;Roof"
    with pytest.raises(Rejection):
        coerce(["Roof", "Pool"], multi)


def test_text_longer_than_the_field_is_rejected_not_truncated():
    with pytest.raises(Rejection, match="11 characters, the field holds 10"):
        coerce("hello world", field(STRING, max_length=10))
    assert coerce("hello", field(STRING, max_length=10)) == "hello"


def test_salesforce_describe_and_field_lookup():
    fields = salesforce_fields({"name": "Opportunity", "fields": SALESFORCE_OBJECTS["Opportunity"]})
    stage = find_field(fields, " stagename ", case_sensitive=False)
    assert (stage.name, stage.kind, stage.restricted) == ("StageName", PICKLIST, True)
    assert "Closed Won" in stage.options
    assert find_field(fields, "Amount", case_sensitive=False).kind == NUMBER
    assert find_field(fields, "Short__c", case_sensitive=False).max_length == 10
    with pytest.raises(Rejection) as missing:
        find_field(fields, "Nope__c", case_sensitive=False)
    with pytest.raises(Rejection) as read_only:
        find_field(fields, "CreatedDate", case_sensitive=False)
    assert (missing.value.code, read_only.value.code) == ("unknown_field", "not_updateable")


def test_hubspot_properties_and_case_sensitive_lookup():
    fields = hubspot_fields({"results": HUBSPOT_OBJECTS["deals"]})
    assert fields["dealstage"].kind == PICKLIST and fields["dealstage"].labels["Closedwon"] == "closedwon"
    assert fields["tags"].kind == MULTIPICKLIST and fields["flag"].kind == BOOLEAN
    assert find_field(fields, "DealStage", case_sensitive=True).name == "dealstage"   # one case-folded match
    with pytest.raises(Rejection) as read_only:
        find_field(fields, "hs_object_id", case_sensitive=True)
    assert read_only.value.code == "not_updateable"
    clash = {"Note": FieldSchema("Note", STRING), "note": FieldSchema("note", STRING)}
    with pytest.raises(Rejection):
        find_field(clash, "NOTE", case_sensitive=True)


def test_schema_fingerprint_changes_with_the_options():
    a = field(PICKLIST, options=("A",), restricted=True)
    b = field(PICKLIST, options=("A", "B"), restricted=True)
    assert a.fingerprint() != b.fingerprint() and a.fingerprint() == field(PICKLIST, options=("A",), restricted=True).fingerprint()
