"""Default field schemas of the fake CRMs: the fields the simulated world maps to, plus
a few with constraints (a restricted picklist, a short text, a read-only field) for tests.
"""

from __future__ import annotations

_PRODUCTS = ["Solar panels", "Battery", "Roof", "Gutters", "Windows", "Siding", "HVAC", "Heat pump",
             "Insulation", "EV charger"]


def _sf(name: str, type_: str, *, length: int = 0, updateable: bool = True, options=None, restricted=False) -> dict:
    return {
        "name": name, "type": type_, "updateable": updateable, "length": length,
        "picklistValues": [{"value": o, "active": True} for o in options or []],
        "restrictedPicklist": restricted,
    }


_COMMON_SF = [
    _sf("Id", "id", length=18, updateable=False),
    _sf("Name", "string", length=120),
    _sf("Description", "textarea", length=32000),
    _sf("Note__c", "string", length=255),
    _sf("Short__c", "string", length=10),
    _sf("Tags__c", "multipicklist", length=4099, options=_PRODUCTS + ["red", "grün", "1", "two", "true", "2.5"]),
    _sf("Flag__c", "boolean"),
    _sf("Count__c", "double"),
    _sf("Day__c", "date"),
    _sf("Financing__c", "boolean"),
    _sf("Score__c", "double"),
    _sf("CreatedDate", "datetime", updateable=False),
]

SALESFORCE_OBJECTS: dict[str, list[dict]] = {
    "Opportunity": _COMMON_SF + [
        _sf("StageName", "picklist", length=255, options=["Prospecting", "Qualification", "Closed Won", "Closed Lost"],
            restricted=True),
        _sf("Amount", "currency"),
        _sf("Probability", "percent"),
        _sf("Competitor__c", "string", length=255),
        _sf("Products__c", "multipicklist", length=4099, options=_PRODUCTS),
        _sf("Quantity__c", "double"),
        _sf("CloseDate", "date"),
        _sf("Stage__c", "string", length=255),
    ],
    "Account": _COMMON_SF + [_sf("Interests__c", "multipicklist", length=4099, options=_PRODUCTS),
                             _sf("Roof_Age__c", "double")],
    "Contact": _COMMON_SF + [_sf("Household_Size__c", "double"), _sf("Email", "email", length=80)],
    "Lead": _COMMON_SF + [_sf("LeadSource", "picklist", length=255, options=["Web form", "Referral"])],
    "Event": _COMMON_SF + [_sf("Decision_Maker_Present__c", "boolean"), _sf("Follow_Up_Date__c", "date"),
                           _sf("Signals__c", "string", length=255)],
    "User": _COMMON_SF,
}

# Record id prefixes: the first three characters name the object.
SALESFORCE_PREFIXES = {"Account": "001", "Contact": "003", "Opportunity": "006", "Lead": "00Q", "Event": "00U", "User": "005"}


def _hs(name: str, type_: str, field_type: str = "text", *, options=None, read_only: bool = False) -> dict:
    return {
        "name": name, "label": name.replace("_", " ").title(), "type": type_, "fieldType": field_type,
        "options": [{"label": o.title() if isinstance(o, str) else o, "value": o} for o in options or []],
        "modificationMetadata": {"readOnlyValue": read_only},
    }


_COMMON_HS = [
    _hs("hs_object_id", "number", "number", read_only=True),
    _hs("name", "string"),
    _hs("description", "string", "textarea"),
    _hs("note", "string", "textarea"),
    _hs("tags", "enumeration", "checkbox", options=_PRODUCTS + ["red", "grün", "1", "two", "true", "2.5"]),
    _hs("flag", "bool", "booleancheckbox"),
    _hs("count", "number", "number"),
    _hs("day", "date", "date"),
    _hs("financing", "bool", "booleancheckbox"),
]

HUBSPOT_OBJECTS: dict[str, list[dict]] = {
    "deals": _COMMON_HS + [
        _hs("dealstage", "enumeration", "select", options=["appointmentscheduled", "closedwon", "closedlost"]),
        _hs("amount", "number", "number"),
        _hs("closedate", "date", "date"),
        _hs("products", "enumeration", "checkbox", options=_PRODUCTS),
    ],
    "companies": _COMMON_HS + [_hs("interests", "enumeration", "checkbox", options=_PRODUCTS)],
    "contacts": _COMMON_HS + [_hs("email", "string")],
    "leads": _COMMON_HS,
    "meetings": _COMMON_HS + [_hs("hs_meeting_body", "string", "textarea")],
}
