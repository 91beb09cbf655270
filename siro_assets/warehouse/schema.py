"""DuckDB DDL of an instance's schema (`siro` by default): the raw recordings table and
its nested types. Table names are unqualified: every warehouse connection's default
schema is its instance's (`connection.use_schema`).

The nested columns keep the API's camelCase field names so that a reader who knows
the API finds the same names in `crm.engagement.externalId`; the top-level columns
are snake_case like every other warehouse table.
"""

from __future__ import annotations

from .backend import create_day_table
from .connection import DEFAULT_SCHEMA

#: The default schema's name, for the modules that still qualify their tables with it.
SCHEMA = DEFAULT_SCHEMA
RECORDINGS_TABLE = "recordings"

OBJECT_REF = "STRUCT(id VARCHAR, externalId VARCHAR)"

CRM_STRUCT = (
    "STRUCT("
    "integrationConnectionId VARCHAR, "
    f"users {OBJECT_REF}[], "
    f"engagement {OBJECT_REF}, "
    f"opportunity {OBJECT_REF}, "
    f"contacts {OBJECT_REF}[], "
    f"account {OBJECT_REF}, "
    f"lead {OBJECT_REF})"
)

SUMMARY_LIST = "STRUCT(id VARCHAR, name VARCHAR, content VARCHAR)[]"

EXTRACTION_LIST = (
    "STRUCT(name VARCHAR, value JSON, "
    "mappings STRUCT(crmModelName VARCHAR, crmFieldName VARCHAR)[])[]"
)

# json_transform() takes the target shape as a JSON "structure" document.
_REF_SHAPE = '{"id":"VARCHAR","externalId":"VARCHAR"}'
CRM_JSON_SHAPE = (
    '{"integrationConnectionId":"VARCHAR",'
    f'"users":[{_REF_SHAPE}],"engagement":{_REF_SHAPE},"opportunity":{_REF_SHAPE},'
    f'"contacts":[{_REF_SHAPE}],"account":{_REF_SHAPE},"lead":{_REF_SHAPE}}}'
)
SUMMARY_JSON_SHAPE = '[{"id":"VARCHAR","name":"VARCHAR","content":"VARCHAR"}]'
EXTRACTION_JSON_SHAPE = (
    '[{"name":"VARCHAR","value":"JSON",'
    '"mappings":[{"crmModelName":"VARCHAR","crmFieldName":"VARCHAR"}]}]'
)
# The typed view of one API recording; timestamps stay text here and are cast with
# TRY_CAST so that one odd value nulls a field instead of failing the whole page.
RECORD_JSON_SHAPE = (
    '{"id":"VARCHAR","organizationId":"VARCHAR","userId":"VARCHAR","title":"VARCHAR",'
    '"durationInMilliseconds":"DOUBLE","latitude":"DOUBLE","longitude":"DOUBLE",'
    '"result":"VARCHAR","createdAt":"VARCHAR","updatedAt":"VARCHAR","deleted":"BOOLEAN",'
    '"deletedAt":"VARCHAR","rootDataPurgedAt":"VARCHAR","isProcessingDone":"BOOLEAN",'
    '"isEntityExtractionDone":"BOOLEAN","isSummaryDone":"BOOLEAN","evaluationScore":"DOUBLE",'
    '"links":{"web":{"self":"VARCHAR"}},'
    f'"crm":{CRM_JSON_SHAPE},"summary":{SUMMARY_JSON_SHAPE},"entityExtractions":{EXTRACTION_JSON_SHAPE}}}'
)

RECORDINGS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "VARCHAR NOT NULL"),
    ("organization_id", "VARCHAR"),
    ("user_id", "VARCHAR"),
    ("title", "VARCHAR"),
    ("duration_ms", "DOUBLE"),
    ("latitude", "DOUBLE"),
    ("longitude", "DOUBLE"),
    ("result", "VARCHAR"),
    ("created_at", "TIMESTAMPTZ NOT NULL"),
    ("updated_at", "TIMESTAMPTZ"),
    ("deleted", "BOOLEAN"),
    ("deleted_at", "TIMESTAMPTZ"),
    ("root_data_purged_at", "TIMESTAMPTZ"),
    ("is_processing_done", "BOOLEAN"),
    ("is_entity_extraction_done", "BOOLEAN"),
    ("is_summary_done", "BOOLEAN"),
    ("evaluation_score", "DOUBLE"),
    ("web_url", "VARCHAR"),
    ("crm", CRM_STRUCT),
    ("summary", SUMMARY_LIST),
    ("entity_extractions", EXTRACTION_LIST),
    ("payload", "JSON NOT NULL"),
    ("partition_date", "DATE NOT NULL"),
    ("ingested_at", "TIMESTAMPTZ NOT NULL"),
)

RECORDINGS_COLUMN_NAMES = tuple(name for name, _ in RECORDINGS_COLUMNS)

# What each raw column holds, for catalogs (the Dagster UI shows them as the column schema).
RECORDINGS_COLUMN_DESCRIPTIONS: dict[str, str] = {
    "id": "Siro recording id (API `id`); unique across the table.",
    "organization_id": "Siro organization the recording belongs to (`organizationId`).",
    "user_id": "Siro user (rep) who recorded it (`userId`).",
    "title": "Recording title (`title`).",
    "duration_ms": "Length of the recording in milliseconds (`durationInMilliseconds`).",
    "latitude": "Where it was recorded (`latitude`).",
    "longitude": "Where it was recorded (`longitude`).",
    "result": "Deal outcome of the conversation (`result`): OPEN, WON or LOST.",
    "created_at": "When the recording was created (`createdAt`, UTC); decides the partition.",
    "updated_at": "Last change to the recording or its enrichments (`updatedAt`, UTC); the sensor watches it.",
    "deleted": "Deleted in Siro (`deleted`); such rows stay here, flagged, and leave every derived table.",
    "deleted_at": "When it was deleted (`deletedAt`, UTC).",
    "root_data_purged_at": "When its audio and transcript were purged (`rootDataPurgedAt`, UTC); purged rows "
    "leave every derived table.",
    "is_processing_done": "Siro finished processing the audio (`isProcessingDone`).",
    "is_entity_extraction_done": "Entity extraction finished (`isEntityExtractionDone`).",
    "is_summary_done": "The AI summary finished (`isSummaryDone`).",
    "evaluation_score": "Scorecard evaluation score of the recording (`evaluationScore`).",
    "web_url": "Link to the recording in Siro's web app (`links.web.self`).",
    "crm": "Confirmed CRM links (`crm`): integration connection, users, engagement, opportunity, "
    "contacts, account, lead, each as {id, externalId}; NULL until linked.",
    "summary": "AI summary sections in API order (`summary`): {id, name, content}.",
    "entity_extractions": "Extracted values and their CRM field mappings (`entityExtractions`): "
    "{name, value (JSON), mappings [{crmModelName, crmFieldName}]}.",
    "payload": "The whole API object as JSON, unknown fields included.",
    "partition_date": "UTC day of created_at: the daily partition the row belongs to.",
    "ingested_at": "When the run that wrote this row fetched it (UTC).",
}


def recordings_ddl(table: str = RECORDINGS_TABLE) -> str:
    """CREATE TABLE statement for the raw recordings table (or a staging copy of it)."""
    columns = ",\n    ".join(f"{name} {sql_type}" for name, sql_type in RECORDINGS_COLUMNS)
    return f"CREATE TABLE IF NOT EXISTS {table} (\n    {columns}\n)"


def ensure_schema(con) -> None:
    """Create the raw table in the connection's schema if it does not exist yet (on a
    lake, partitioned by day; see `backend.create_day_table`). The schema itself is
    created when a writer connects (`connection.use_schema`)."""
    create_day_table(con, recordings_ddl(), RECORDINGS_TABLE)
