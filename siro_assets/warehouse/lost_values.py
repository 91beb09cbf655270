"""The lost-value guard: SQL that names every field a typed column would silently lose.

`json_transform` is lenient: a value of the wrong type becomes NULL (or, for an object
in a STRUCT column, a struct of NULLs) without an error. For every path the pipeline
decides on, and every nested path a derived table reads (`transforms/`), the stage
compares the typed value with the raw JSON type and refuses the partition when they
disagree, rather than resurrect a deleted recording or drop its links and writebacks.
`payload` keeps the truth either way.

Cost matters: this runs on every page. All fixed paths share one multi-path
`json_type` call (one parse of the record). List elements cannot be checked that way
(DuckDB forbids wildcards in a multi-path call), so the typed list is inspected first
and the raw element types are parsed only for a list holding an element whose fields
are all NULL, the one shape a lost element can take (a JSON `null` or `{}` element
also looks like that and is then confirmed harmless).
"""

from __future__ import annotations

from dataclasses import dataclass

_NUMBER = ("BIGINT", "UBIGINT", "DOUBLE")


@dataclass(frozen=True)
class FixedPath:
    """A field at a fixed JSON path: lost when the raw value is present and not null but
    of another JSON type, or when the typed value came out NULL (e.g. an unparsable
    timestamp)."""

    path: str  # JSONPath below `$`, e.g. `crm.engagement`
    typed: str  # SQL for the typed value in the `typed` CTE (record struct `t`)
    json_types: tuple[str, ...]


@dataclass(frozen=True)
class ListElements:
    """The elements of a list (`path` may itself cross a list, like `a[*].b`)."""

    path: str  # JSONPath of the elements, e.g. `summary[*]`
    suspect: str  # SQL: true when some typed element could be a lost one
    json_types: tuple[str, ...]


def _all_null(fields: tuple[str, ...], var: str = "x") -> str:
    return " AND ".join(f"{var}.{f} IS NULL" for f in fields)


def _any(list_sql: str, condition: str, var: str = "x") -> str:
    return f"list_bool_or(list_transform({list_sql}, lambda {var}: {condition}))"


_REF_FIELDS = ("id", "externalId")
_MAPPINGS = "flatten(list_transform(t.entityExtractions, lambda e: e.mappings))"

FIXED_PATHS: tuple[FixedPath, ...] = (
    FixedPath("updatedAt", "updated_at", ("VARCHAR",)),
    FixedPath("deleted", "deleted", ("BOOLEAN",)),
    FixedPath("deletedAt", "deleted_at", ("VARCHAR",)),
    FixedPath("rootDataPurgedAt", "root_data_purged_at", ("VARCHAR",)),
    # recording_daily_stats averages it; a numeric string still converts.
    FixedPath("durationInMilliseconds", "duration_ms", (*_NUMBER, "VARCHAR")),
    FixedPath("crm", "crm", ("OBJECT",)),
    FixedPath("crm.users", "t.crm.users", ("ARRAY",)),
    FixedPath("crm.contacts", "t.crm.contacts", ("ARRAY",)),
    FixedPath("crm.engagement", "t.crm.engagement", ("OBJECT",)),
    FixedPath("crm.opportunity", "t.crm.opportunity", ("OBJECT",)),
    FixedPath("crm.account", "t.crm.account", ("OBJECT",)),
    FixedPath("crm.lead", "t.crm.lead", ("OBJECT",)),
    FixedPath("summary", "summary", ("ARRAY",)),
    FixedPath("entityExtractions", "entity_extractions", ("ARRAY",)),
)

LIST_ELEMENTS: tuple[ListElements, ...] = (
    ListElements("crm.users[*]", _any("t.crm.users", _all_null(_REF_FIELDS)), ("OBJECT",)),
    ListElements("crm.contacts[*]", _any("t.crm.contacts", _all_null(_REF_FIELDS)), ("OBJECT",)),
    ListElements("summary[*]", _any("t.summary", _all_null(("id", "name", "content"))), ("OBJECT",)),
    ListElements(
        "entityExtractions[*]",
        _any("t.entityExtractions", _all_null(("name", "value", "mappings"))),
        ("OBJECT",),
    ),
    ListElements(
        "entityExtractions[*].mappings", _any("t.entityExtractions", "x.mappings IS NULL"), ("ARRAY",)
    ),
    ListElements(
        "entityExtractions[*].mappings[*]",
        _any(_MAPPINGS, _all_null(("crmModelName", "crmFieldName"))),
        ("OBJECT",),
    ),
)


def _sql_list(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in (*values, "NULL"))


def raw_types_sql(record: str = "r") -> str:
    """One `json_type` over every fixed path: a list of JSON type names (NULL if absent)."""
    return f"json_type({record}, [" + ", ".join(f"'$.{p.path}'" for p in FIXED_PATHS) + "])"


def lost_values_sql(record: str = "r", raw_types: str = "raw") -> str:
    """SQL for the list of paths whose value the typed columns lost (empty when none).

    Reads the raw record `record`, its `raw_types_sql` list `raw_types`, the typed
    record struct `t` and the typed columns of the `shaped` CTE.
    """
    checks = [
        f"CASE WHEN coalesce({raw_types}[{i}], 'NULL') <> 'NULL' AND ({raw_types}[{i}] NOT IN "
        f"({_sql_list(p.json_types)}) OR {p.typed} IS NULL) THEN '{p.path}' END"
        for i, p in enumerate(FIXED_PATHS, start=1)
    ]
    # Nested CASE so the wildcard json_type (a second parse) runs only for suspect rows.
    checks += [
        f"CASE WHEN {e.suspect} THEN CASE WHEN list_bool_or(list_transform("
        f"json_type({record}, '$.{e.path}'), lambda ty: ty NOT IN ({_sql_list(e.json_types)}))) "
        f"THEN '{e.path}' END END"
        for e in LIST_ELEMENTS
    ]
    return "list_filter([" + ", ".join(checks) + "], lambda x: x IS NOT NULL)"
