"""The writeback check: fails while CRM rejects or failures stand for current targets."""

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetChecksDefinition,
    MetadataValue,
    asset_check,
)

from ...crm import STATE_TABLE, outstanding
from ...warehouse.tables import table_exists
from ..resources import WarehouseResource
from ..settings import PipelineSettings


WRITEBACK_CHECK_NAME = "no_outstanding_rejects_or_failures"


def writeback_check_key(settings: PipelineSettings) -> AssetCheckKey:
    """The key of one instance's writeback check."""
    return AssetCheckKey(settings.key("crm_writebacks"), WRITEBACK_CHECK_NAME)


def build_writeback_check(settings: PipelineSettings) -> AssetChecksDefinition:
    """The writeback check of one instance's `crm_writebacks`."""
    warehouse_key = settings.warehouse_resource_key

    @asset_check(
        asset=settings.key("crm_writebacks"),
        name=WRITEBACK_CHECK_NAME,
        description="No CRM field's current target value stands rejected or failed; names the top error codes.",
        required_resource_keys={warehouse_key},
    )
    def no_outstanding_rejects_or_failures(context: AssetCheckExecutionContext) -> AssetCheckResult:
        """Fails while a field's current target was rejected (or failed) and not yet delivered."""
        return evaluate_outstanding(getattr(context.resources, warehouse_key))

    return no_outstanding_rejects_or_failures


def evaluate_outstanding(warehouse: WarehouseResource) -> AssetCheckResult:
    """Pass when no current target stands rejected or failed in the ledger."""
    with warehouse.read_connection() as con:
        rows = outstanding(con) if table_exists(con, STATE_TABLE) else []
    rejected = sum(n for outcome, _, n in rows if outcome == "rejected")
    failed = sum(n for outcome, _, n in rows if outcome == "failed")
    codes: dict[str, int] = {}
    for _, code, n in rows:
        codes[code] = codes.get(code, 0) + n
    top = sorted(codes.items(), key=lambda item: (-item[1], item[0]))[:5]
    description = None
    if rows:
        named = ", ".join(f"{code} ({n})" for code, n in top)
        description = (f"{rejected} rejected and {failed} failed CRM field(s); top error codes: {named}. "
                       f"See {warehouse.table_schema}.crm_writeback_log and docs/WRITEBACKS.md.")
    return AssetCheckResult(
        passed=not rows,
        description=description,
        metadata={
            "rejected_fields": MetadataValue.int(rejected),
            "failed_fields": MetadataValue.int(failed),
            "top_error_codes": MetadataValue.json(dict(top)),
        },
    )
