"""`siro/crm_writebacks`: extracted values delivered to the CRMs, exactly once, never backwards."""

# No `from __future__ import annotations`: Dagster inspects the real annotation
# objects of context, config and resource parameters.
from dagster import (
    AssetExecutionContext, AssetKey, BackfillPolicy, Config, MaterializeResult, MetadataValue, TableColumn,
    TableColumnConstraints, TableColumnDep, TableColumnLineage, TableSchema, asset,
)
from pydantic import Field

from ...crm import LOG_TABLE, STATE_TABLE
from ...crm.ledger import DDL, LOG_COLUMNS
from ...transforms import CRM_WRITEBACK_PLAN, LATEST_WRITES_SQL
from ...transforms.table import sql_fingerprint
from ...warehouse.schema import SCHEMA
from ..catalog import OWNERS, table_metadata
from ..partitions import daily_partitions, dates_in_range, partition_key
from ..resources import WarehouseResource
from .resource import CrmWritebackResource

CRM_WRITEBACKS_KEY = AssetKey([SCHEMA, "crm_writebacks"])
PLAN_KEY = AssetKey([SCHEMA, CRM_WRITEBACK_PLAN.name])

# Deliveries run one at a time (dagster.yaml: every pool's limit is 1), so two runs never
# send the same due write; the warehouse pool is not held, because delivery opens DuckDB
# only around each short ledger transaction.
CRM_POOL = "siro_crm"


LOG_SCHEMA = TableSchema(columns=[
    TableColumn(name=name, type=sql_type.replace(" NOT NULL", ""), description=description,
                constraints=TableColumnConstraints(nullable="NOT NULL" not in sql_type))
    for name, sql_type, description, _ in LOG_COLUMNS
])
# Each log column's source columns in the plan (none for what the attempt itself decides).
LOG_LINEAGE = TableColumnLineage(deps_by_column={
    name: [TableColumnDep(asset_key=PLAN_KEY, column_name=source) for source in sources]
    for name, _, _, sources in LOG_COLUMNS
})


class WritebackRunConfig(Config):
    """Launchpad options for a writeback run."""

    dry_run: bool = Field(default=False, description="Send nothing; log what would be sent.")
    retry_rejects: bool = Field(
        default=False, description="Re-send values the CRM rejected before (after fixing the CRM or the mapping).")


@asset(
    key=CRM_WRITEBACKS_KEY,
    deps=[PLAN_KEY],
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    pool=CRM_POOL,
    group_name="siro_writebacks",
    owners=OWNERS,
    kinds={"duckdb", "salesforce", "hubspot"},
    # Changes with the ledger's tables and the rule that picks each field's target.
    code_version=sql_fingerprint(*DDL, LATEST_WRITES_SQL),
    metadata={
        **table_metadata(LOG_TABLE, LOG_SCHEMA),
        "dagster/column_lineage": LOG_LINEAGE,
        "state_table": STATE_TABLE,
    },
)
def crm_writebacks(
    context: AssetExecutionContext, config: WritebackRunConfig, warehouse: WarehouseResource,
    crm: CrmWritebackResource,
) -> MaterializeResult:
    """Deliver each CRM field's target value to the CRM its connection routes to.

    A field's target is the value of the newest live recording that maps to it, across all
    partitions (`LATEST_WRITES_SQL`). It is sent when it differs from the value the CRM
    last acknowledged (`siro.crm_writeback_state`), so A -> B -> A sends the second A and
    an unchanged value is never sent twice. Every due write is delivered, whatever its
    day; the run's partitions decide which unchanged fields get a `skipped_unchanged` log
    row. Nulls are never sent unless the connection opts in. Each attempt is a row of
    `siro.crm_writeback_log` (outcome delivered, rejected, failed, skipped_unchanged or
    dry_run, with the CRM's status, code and message).

    Routing: `SIRO_CRM_CONNECTIONS` (YAML by integration connection id) or `SIRO_CRM_SINK`
    (outbox by default: `siro.crm_outbox`). Run config `dry_run` (or `SIRO_CRM_DRY_RUN=1`)
    sends nothing; `retry_rejects` re-sends values rejected before. See docs/WRITEBACKS.md.
    """
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
