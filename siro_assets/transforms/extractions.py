"""Entity extractions of each recording, one row per CRM field mapping (`recording_entity_extractions`).

`value` keeps the extracted value as JSON, so a number stays a number and an array an
array; `value_text` renders it for people and text fields; `value_type` says which shape
it is. A null or absent value is stored as the JSON literal `null` (never SQL NULL), so
`value` can be written back to a CRM field without a special case.
"""

from __future__ import annotations

from .sql_fragments import VALUE_TEXT, VALUE_TYPE
from .table import PARTITION_DATE, RECORDING_ID, Column, DerivedTable, live_recordings

VALUE_TYPES = ("string", "number", "boolean", "null", "array")



_SELECT = f"""
WITH extractions AS (
    SELECT partition_date, id, generate_subscripts(entity_extractions, 1) - 1 AS position,
           unnest(entity_extractions) AS x
    FROM ({live_recordings("entity_extractions")})
),
shaped AS (
    SELECT partition_date, id, position, x.name AS name,
           coalesce(x.value, 'null'::JSON) AS value,
           len(x.mappings) > 0 AS has_mappings,
           -- A one-NULL list stands in for null or [] mappings so that the extraction
           -- still yields its one row when the mappings are exploded below.
           CASE WHEN len(x.mappings) > 0 THEN x.mappings ELSE [NULL] END AS mapping_list
    FROM extractions
    WHERE x IS NOT NULL
),
exploded AS (
    SELECT partition_date, id, position, name, value, has_mappings,
           generate_subscripts(mapping_list, 1) - 1 AS mapping_position,
           unnest(mapping_list) AS mapping
    FROM shaped
)
SELECT partition_date, id, position, name, value,
       {VALUE_TEXT} AS value_text,
       {VALUE_TYPE} AS value_type,
       mapping.crmModelName, mapping.crmFieldName,
       CASE WHEN has_mappings THEN mapping_position END
FROM exploded
"""

RECORDING_ENTITY_EXTRACTIONS = DerivedTable(
    name="recording_entity_extractions",
    description=(
        "One row per (entity extraction, CRM field mapping) of a recording; an extraction "
        "whose `mappings` is null or [] has one row with null mapping columns. Join "
        "`recording_id` to siro.recordings.id (or to siro.recording_crm to find the CRM "
        "record of `crm_model_name`) and write `value` to `crm_field_name`. `position` is the "
        "0-based index of the extraction in the API's list, so (recording_id, position) "
        "identifies an extraction and (recording_id, position, mapping_position) a row."
    ),
    columns=(
        PARTITION_DATE,
        RECORDING_ID,
        Column("position", "INTEGER NOT NULL", "0-based index of the extraction in entityExtractions.",
               ("entity_extractions",)),
        Column("name", "VARCHAR", "Extracted field name.", ("entity_extractions",)),
        Column("value", "JSON NOT NULL",
               "Extracted value as JSON (string, number, boolean, array); JSON null when null or absent.",
               ("entity_extractions",)),
        Column("value_text", "VARCHAR",
               "Readable rendering: unquoted string, number/boolean text, array elements joined "
               "with ', ' (nulls skipped); NULL for a null value.", ("entity_extractions",)),
        Column("value_type", "VARCHAR NOT NULL", "string, number, boolean, null or array.",
               ("entity_extractions",)),
        Column("crm_model_name", "VARCHAR", "CRM object to write the value to; NULL without mapping.",
               ("entity_extractions",)),
        Column("crm_field_name", "VARCHAR", "CRM field to write the value to; NULL without mapping.",
               ("entity_extractions",)),
        Column("mapping_position", "INTEGER",
               "0-based index of the mapping in mappings; NULL when mappings is null or [].",
               ("entity_extractions",)),
    ),
    select=_SELECT,
)
