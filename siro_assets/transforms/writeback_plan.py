"""Candidate CRM field writes, one row per target record (`crm_writeback_plan`), and the newest-wins rule.

Every mapping of every entity extraction is resolved against the recording's own `crm`
block by model name, case-insensitively. Siro's CRM links arrive under Salesforce-style names
(Opportunity, Account, Contact, Lead, Event), HubSpot-style names (Deal, Company, Contact,
Meeting) and Merge.dev's common models (Engagement, Appointment, User):

| `crm_model_name` | target(s) in `crm` | `object_type` |
|---|---|---|
| Opportunity, Deal | `crm.opportunity` | opportunity |
| Account, Company | `crm.account` | account |
| Lead | `crm.lead` | lead |
| Engagement, Appointment, Event, Meeting | `crm.engagement` | engagement |
| Contact | every element of `crm.contacts` (one row each) | contact |
| User | every element of `crm.users` (one row each) | user |

`plan_status` says whether the row can be written, first match wins:

1. `unknown_model`: the model name is none of the above (or missing); linking won't help.
2. `no_field`: the mapping names no `crmFieldName` (missing or blank); nothing to write to.
3. `unlinked`: the recording has no `crm` block yet. A later link bumps `updatedAt`, the
   sensor rematerializes the day, and the rows turn `ready`.
4. `no_target`: `crm` has no object for that model (no lead linked, `contacts` empty), or
   the object has no `externalId` (`siro_id` is then still shown).
5. `clear`: the value is JSON null (or absent). Nothing was extracted, so the row never
   competes for the field, except for a connection with `write_nulls: true`, to which
   it is a clear of the field.
6. `blank`: the value is blank but not null: an empty or whitespace-only string, `[]`,
   or an array whose elements are all blank (`IS_BLANK`). "Nothing extracted": never
   sent and never competes, so an older recording's real value still reaches the field.
7. `ready`: a real value, and the target record's `external_id` is known.

Unresolved rows are kept (NULL `external_id`) so an operator can see why a value is not
written. An object reference with neither id (`{}` or a null list element) is not a link,
as in `recording_crm_links`, so it yields no row; when none is left the mapping yields one
`no_target` row. Extractions with null or `[]` mappings, and null mapping elements, have no
rows: there is nothing to write. Deleted or purged recordings have no rows.

A write's target is (`integration_connection_id`, `object_type`, `external_id`, field),
with the field compared case-insensitively: "Event.Notes" and "Appointment.notes" on the
same engagement are one CRM field, so they share a key and compete in `LATEST_WRITES_SQL`.
`idempotency_key` (`ready` and `clear` rows) names *this recording's* write: `sha256` of the
canonical JSON array
`[integration_connection_id, object_type, external_id, lower(trim(crm_field_name)), value, recording_id]`,
with `value` normalised by `json()` (minified, escapes decoded). It is equal on every
rebuild, and differs between two recordings that write the same value, so A -> B -> A
(recordings R1, R2, R3) gives R3 its own key. It is not a delivery key: whether a value is
already in the CRM is judged against the field's last acknowledged value in the delivery
ledger (`siro_assets.crm.ledger`), which also derives the per-delivery key.

`LATEST_WRITES_SQL` applies the rule for a CRM field: its target is the newest non-blank
value from a live recording that maps to it, by `createdAt`, ties by recording id, across
all partitions. `latest_writes_sql` states the same rule for connections that may opt in
to clears: where they do, a `clear` row competes too.
"""

from __future__ import annotations

from .sql_fragments import IS_BLANK, IS_CRM_REF, VALUE_TEXT, VALUE_TYPE
from .table import PARTITION_DATE, RECORDING_ID, Column, DerivedTable, live_recordings

PLAN_STATUSES = ("ready", "unlinked", "no_target", "unknown_model", "no_field", "clear", "blank")
# Rows that may be sent: real values always, clears only where the connection opts in.
SENDABLE_STATUSES = ("ready", "clear")

# Lower-cased API model name -> the crm block object it writes to.
MODEL_OBJECTS: dict[str, str] = {
    "opportunity": "opportunity",
    "deal": "opportunity",
    "account": "account",
    "company": "account",
    "lead": "lead",
    "engagement": "engagement",
    "appointment": "engagement",
    "event": "engagement",
    "meeting": "engagement",
    "contact": "contact",
    "user": "user",
}

_OBJECT_TYPE = (
    "CASE lower(m.crmModelName) "
    + " ".join(f"WHEN '{model}' THEN '{obj}'" for model, obj in MODEL_OBJECTS.items())
    + " END"
)

# The crm objects an object type points at, as a list of {ref, pos} where pos is the
# 0-based index in the API's array (0 for the single objects).
_CANDIDATES = """
CASE object_type
    WHEN 'contact' THEN crm.contacts
    WHEN 'user' THEN crm.users
    WHEN 'engagement' THEN [crm.engagement]
    WHEN 'opportunity' THEN [crm.opportunity]
    WHEN 'account' THEN [crm.account]
    WHEN 'lead' THEN [crm.lead]
END"""

_SELECT = f"""
WITH extractions AS (
    SELECT partition_date, id, created_at, crm,
           generate_subscripts(entity_extractions, 1) - 1 AS extraction_position,
           unnest(entity_extractions) AS x
    FROM ({live_recordings("created_at", "crm", "entity_extractions")})
),
valued AS (
    -- The value's renderings, once per extraction rather than once per mapping and
    -- target it fans out to below; extractions without mappings are dropped first.
    SELECT partition_date, id, created_at, crm, extraction_position,
           x.name AS extraction_name, x.mappings AS mapping_list, value,
           {VALUE_TEXT} AS value_text,
           {VALUE_TYPE} AS value_type,
           {IS_BLANK} AS is_blank,
           json(value) AS canonical_value
    FROM (SELECT *, coalesce(x.value, 'null'::JSON) AS value FROM extractions)
    WHERE x IS NOT NULL AND len(x.mappings) > 0
),
mappings AS (
    -- unnest of a null or empty list yields no row: no mappings, nothing to write.
    SELECT * EXCLUDE (mapping_list),
           generate_subscripts(mapping_list, 1) - 1 AS mapping_position,
           unnest(mapping_list) AS m
    FROM valued
),
typed AS (
    SELECT * EXCLUDE (m), m.crmModelName AS crm_model_name, m.crmFieldName AS crm_field_name,
           {_OBJECT_TYPE} AS object_type
    FROM mappings
    WHERE m IS NOT NULL
),
targeted AS (
    SELECT *,
           coalesce(list_filter(
               list_transform({_CANDIDATES}, lambda r, i: {{'ref': r, 'pos': i - 1}}),
               lambda t: {IS_CRM_REF.format(ref="t.ref")}
           ), []) AS targets
    FROM typed
),
resolved AS (
    -- A mapping with no linked target still yields one row (t NULL) that says why.
    SELECT * EXCLUDE (targets),
           unnest(CASE WHEN len(targets) > 0 THEN targets ELSE [NULL] END) AS t
    FROM targeted
),
planned AS (
    SELECT *,
           crm.integrationConnectionId AS integration_connection_id,
           nullif(t.ref.externalId, '') AS external_id,
           CASE
               WHEN object_type IS NULL THEN 'unknown_model'
               WHEN nullif(trim(crm_field_name), '') IS NULL THEN 'no_field'
               WHEN crm IS NULL THEN 'unlinked'
               WHEN external_id IS NULL THEN 'no_target'
               WHEN value_type = 'null' THEN 'clear'
               WHEN is_blank THEN 'blank'
               ELSE 'ready'
           END AS plan_status
    FROM resolved
)
SELECT partition_date, id, created_at, extraction_position, mapping_position,
       extraction_name, crm_model_name, crm_field_name, object_type, t.pos,
       integration_connection_id, external_id, t.ref.id,
       value, value_text, value_type,
       plan_status,
       CASE WHEN plan_status IN ('ready', 'clear') THEN sha256(json_array(
           integration_connection_id, object_type, external_id, lower(trim(crm_field_name)),
           canonical_value, id
       )::VARCHAR) END
FROM planned
"""

CRM_WRITEBACK_PLAN = DerivedTable(
    name="crm_writeback_plan",
    description=(
        "One row per (recording, entity extraction, CRM field mapping, target CRM record) "
        "that could be written back to the CRM. Rows with plan_status = 'ready' name the "
        "record (`external_id` of `object_type`) and field to write `value` to; the other "
        "statuses say why a value is not written: unlinked, no_target, unknown_model, no_field "
        "(nowhere to write it), blank (nothing extracted: never sent, never competes) and "
        "clear (a null: sent as a clear only where the connection sets write_nulls). "
        "Unique on (recording_id, extraction_position, mapping_position, object_position); join recording_id to siro.recordings.id, (recording_id, "
        "extraction_position, mapping_position) to siro.recording_entity_extractions "
        "(position, mapping_position), (recording_id, object_type, object_position) to "
        "siro.recording_crm_links (object_type, position)."
    ),
    columns=(
        PARTITION_DATE,
        RECORDING_ID,
        Column("recording_created_at", "TIMESTAMPTZ NOT NULL",
               "The recording's createdAt (UTC): a newer recording's value wins a field.",
               ("created_at",)),
        Column("extraction_position", "INTEGER NOT NULL",
               "0-based index of the extraction in entityExtractions.", ("entity_extractions",)),
        Column("mapping_position", "INTEGER NOT NULL",
               "0-based index of the mapping in the extraction's mappings.", ("entity_extractions",)),
        Column("extraction_name", "VARCHAR", "Extracted field name.", ("entity_extractions",)),
        Column("crm_model_name", "VARCHAR", "CRM object type to write to, as the mapping names it.",
               ("entity_extractions",)),
        Column("crm_field_name", "VARCHAR", "CRM field to write the value to.", ("entity_extractions",)),
        Column("object_type", "VARCHAR",
               "crm block object the model resolves to (opportunity, account, lead, engagement, "
               "contact, user); NULL for an unknown model.", ("entity_extractions",)),
        Column("object_position", "INTEGER",
               "0-based index of the target in crm.contacts / crm.users, 0 for the single "
               "objects; NULL when no target is linked.", ("crm", "entity_extractions")),
        Column("integration_connection_id", "VARCHAR",
               "Siro integration connection of the recording's CRM links; NULL when unlinked.",
               ("crm",)),
        Column("external_id", "VARCHAR",
               "The target record's id in the CRM; NULL when no target record is linked.",
               ("crm", "entity_extractions")),
        Column("siro_id", "VARCHAR", "Siro's id of the target record.", ("crm", "entity_extractions")),
        Column("value", "JSON NOT NULL",
               "Value to write, as JSON as sent (JSON null when null or absent).",
               ("entity_extractions",)),
        Column("value_text", "VARCHAR",
               "Readable rendering, as in recording_entity_extractions; NULL for a null value.",
               ("entity_extractions",)),
        Column("value_type", "VARCHAR NOT NULL", "string, number, boolean, null or array.",
               ("entity_extractions",)),
        Column("plan_status", "VARCHAR NOT NULL",
               "ready, unlinked, no_target, unknown_model, no_field, clear (a null: sent only where the "
               "connection opts in to clears) or blank (nothing extracted: never sent); see the asset docs.",
               ("crm", "entity_extractions")),
        Column("idempotency_key", "VARCHAR",
               "sha256 hex of [integration_connection_id, object_type, external_id, "
               "lower(trim(crm_field_name)), value, recording_id]: this recording's write, equal "
               "on every rebuild; NULL unless ready or clear. Not a delivery key (see siro.crm_writeback_state).",
               ("id", "crm", "entity_extractions")),
    ),
    select=_SELECT,
)

# The target of each CRM field, across all partitions: among the rows with a real value
# for a field of a record, the one from the newest recording (ties: the larger
# recording_id, then the later extraction / mapping / list position, so the choice is
# deterministic). Blank rows never compete, so a newer "" or [] cannot hide an older real
# value. Only recordings that are live *now* compete: a plan partition not yet rebuilt
# after its recording was deleted or purged cannot hold the field, and the next newest
# live recording is the target again. The newest real value wins even when the CRM
# rejects it: an older recording's value is never a fallback for a reject.
def latest_writes_sql(clears: str = "FALSE") -> str:
    """Each CRM field's target row; `clears` is a SQL predicate over the plan row `p` that
    is true where its connection opts in to clears (`write_nulls`), letting a newer
    `clear` row (a JSON null) hold the field there. The default: no connection clears."""
    return f"""
SELECT p.*
FROM {CRM_WRITEBACK_PLAN.name} AS p
SEMI JOIN recordings AS r
    ON r.id = p.recording_id AND r.deleted IS NOT TRUE AND r.root_data_purged_at IS NULL
WHERE p.plan_status = 'ready' OR (p.plan_status = 'clear' AND ({clears}))
QUALIFY row_number() OVER (
    -- One CRM field: model aliases resolved to object_type, the field name case-folded,
    -- so "Event.Notes" and "Appointment.notes" compete.
    PARTITION BY p.integration_connection_id, p.object_type, p.external_id,
                 lower(trim(p.crm_field_name))
    ORDER BY p.recording_created_at DESC, p.recording_id DESC,
             p.extraction_position DESC, p.mapping_position DESC, p.object_position DESC
) = 1
"""


# The rule with no connection opting in to clears: the newest non-blank value.
LATEST_WRITES_SQL = latest_writes_sql()

__all__ = [
    "CRM_WRITEBACK_PLAN", "LATEST_WRITES_SQL", "MODEL_OBJECTS", "PLAN_STATUSES", "SENDABLE_STATUSES",
    "latest_writes_sql",
]
