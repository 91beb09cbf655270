"""Set-wise SQL that turns `siro.recordings` into the derived warehouse tables.

No Dagster here: each function takes a DuckDB connection and partition dates. May import
`siro_assets.warehouse` (schema names); never Dagster, httpx or the API client.
"""

from .crm import RECORDING_CRM, RECORDING_CRM_LINKS
from .extractions import RECORDING_ENTITY_EXTRACTIONS
from .rebuild import rebuild_partitions
from .stats import RECORDING_DAILY_STATS
from .summaries import RECORDING_SUMMARIES
from .table import Column, DerivedTable
from .writeback_plan import CRM_WRITEBACK_PLAN, LATEST_WRITES_SQL, latest_writes_sql

DERIVED_TABLES: tuple[DerivedTable, ...] = (
    RECORDING_CRM_LINKS,
    RECORDING_CRM,
    RECORDING_SUMMARIES,
    RECORDING_ENTITY_EXTRACTIONS,
    RECORDING_DAILY_STATS,
    CRM_WRITEBACK_PLAN,
)

__all__ = [
    "CRM_WRITEBACK_PLAN",
    "DERIVED_TABLES",
    "LATEST_WRITES_SQL",
    "RECORDING_CRM",
    "RECORDING_CRM_LINKS",
    "RECORDING_DAILY_STATS",
    "RECORDING_ENTITY_EXTRACTIONS",
    "RECORDING_SUMMARIES",
    "Column",
    "DerivedTable",
    "latest_writes_sql",
    "rebuild_partitions",
]
