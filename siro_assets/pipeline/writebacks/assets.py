"""`siro/crm_writebacks`: extracted values delivered to the CRMs, exactly once, never backwards."""

# No `from __future__ import annotations`: Dagster inspects the real annotation
# objects of context, config and resource parameters.
from dagster import (
    AssetExecutionContext, AssetKey, AssetsDefinition, BackfillPolicy, Config, MaterializeResult, MetadataValue,
    TableColumnDep, TableColumnLineage, asset,
)
from pydantic import Field

from ...crm import LOG_TABLE, STATE_TABLE
from ...crm.ledger import DDL, LOG_COLUMNS
from ...transforms import CRM_WRITEBACK_PLAN, LATEST_WRITES_SQL
from ...transforms.table import sql_fingerprint
from ..catalog import table_metadata, table_schema
from ..partitions import dates_in_range, partition_key
from ..resources import WarehouseResource
from ..settings import PipelineSettings
from .resource import CrmWritebackResource


LOG_SCHEMA = table_schema((name, sql_type, description) for name, sql_type, description, _ in LOG_COLUMNS)


def log_lineage(plan_key: AssetKey) -> TableColumnLineage:
    """Each log column's source columns in the plan (none for what the attempt itself decides)."""
    return TableColumnLineage(deps_by_column={
        name: [TableColumnDep(asset_key=plan_key, column_name=source) for source in sources]
        for name, _, _, sources in LOG_COLUMNS
    })


def _bare(name: str) -> str:
    # The ledger's table without a schema: it lives in the instance's schema.
    return name.rpartition(".")[2]


class WritebackRunConfig(Config):
    """Launchpad options for a writeback run."""

    dry_run: bool = Field(default=False, description="Send nothing; log what would be sent.")
    retry_rejects: bool = Field(
        default=False, description="Re-send values the CRM rejected before (after fixing the CRM or the mapping).")


def build_crm_writebacks_asset(settings: PipelineSettings) -> AssetsDefinition:
    """`<key_prefix>/crm_writebacks` for one instance, on its own warehouse and CRM resources."""
    warehouse_key, crm_key = settings.warehouse_resource_key, settings.crm_resource_key
    plan_key = settings.key(CRM_WRITEBACK_PLAN.name)

    @asset(
        key=settings.key("crm_writebacks"),
        deps=[plan_key],
        partitions_def=settings.partitions_def,
        backfill_policy=BackfillPolicy.single_run(),
        # Deliveries to one instance's CRMs run one at a time (dagster.yaml: every pool's
        # limit is 1); the ledger's delivery lease holds the same line for runs that
        # bypass the queue. The warehouse pool is not held: delivery opens DuckDB only
        # around each short ledger transaction.
        pool=settings.crm_pool,
        group_name=settings.group("writebacks"),
        owners=list(settings.owners),
        tags=dict(settings.tags),
        kinds={"duckdb", "salesforce", "hubspot"},
        # Changes with the ledger's tables and the rule that picks each field's target.
        code_version=sql_fingerprint(*DDL, LATEST_WRITES_SQL),
        metadata={
            **table_metadata(settings.table_name(_bare(LOG_TABLE)), LOG_SCHEMA),
            "dagster/column_lineage": log_lineage(plan_key),
            "state_table": settings.table_name(_bare(STATE_TABLE)),
        },
        required_resource_keys={warehouse_key, crm_key},
    )
    def crm_writebacks(context: AssetExecutionContext, config: WritebackRunConfig) -> MaterializeResult:
        """Deliver each CRM field's target value to the CRM its connection routes to.

        A field's target is the newest non-blank value of a live recording that maps to it,
        across all partitions (`LATEST_WRITES_SQL`): a blank ("", whitespace, [], an array of
        blanks, null) never competes and is never sent. It is sent when it differs from the value the CRM
        last acknowledged (`siro.crm_writeback_state`), so A -> B -> A sends the second A and
        an unchanged value is never sent twice. Every due write is delivered, whatever its
        day; the run's partitions decide which unchanged fields it counts (`unchanged`, one row
        per run in `siro.crm_delivery_runs`, not a log row per field). One delivery at a time:
        the run takes the delivery lease in the ledger first, whatever launched it. A null is
        sent, as a clear, only where the connection sets `write_nulls`. Each attempt is a row
        of `siro.crm_writeback_log` (outcome delivered, rejected, failed or dry_run, with the
        CRM's status, code and message).

        Routing: `SIRO_CRM_CONNECTIONS` (YAML by integration connection id) or `SIRO_CRM_SINK`
        (outbox by default: `siro.crm_outbox`). Run config `dry_run` (or `SIRO_CRM_DRY_RUN=1`)
        sends nothing; `retry_rejects` re-sends values rejected before. See docs/WRITEBACKS.md.
        """
        return deliver_writebacks(
            context, config, getattr(context.resources, warehouse_key), getattr(context.resources, crm_key)
        )

    return crm_writebacks


def deliver_writebacks(
    context: AssetExecutionContext, config: WritebackRunConfig, warehouse: WarehouseResource,
    crm: CrmWritebackResource,
) -> MaterializeResult:
    """Run one delivery over the run's days and report its counts as metadata."""
    days = dates_in_range(context.partition_key_range)
    report = crm.deliver(
        warehouse.get_connection, run_id=context.run.run_id, partitions=days,
        dry_run=config.dry_run, retry_rejects=config.retry_rejects, log=context.log,
    )
    top = report.error_codes.most_common(5)
    metadata = {name: MetadataValue.int(value) for name, value in report.metadata().items()}
    metadata.update(
        dry_run_mode=MetadataValue.bool(config.dry_run or crm.dry_run),
        top_error_codes=MetadataValue.json(dict(top)),
        stopped=MetadataValue.json(report.stopped),
        partition_range=f"{partition_key(days[0])}...{partition_key(days[-1])}",
    )
    return MaterializeResult(metadata=metadata)
