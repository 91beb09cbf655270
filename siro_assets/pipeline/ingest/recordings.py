"""`siro/recordings`: every Siro recording, once, in the UTC day of its createdAt."""


import asyncio
import time
from datetime import date

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    BackfillPolicy,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from .fetch_days import stage_days
from .refresh import recording_ids, stage_changed, stage_ids, updated_since

from ..catalog import RAW_KINDS, raw_code_version, raw_table_schema, table_metadata
from ..freshness import RAW_FRESHNESS_POLICY
from ..partitions import dates_in_range, partition_key
from ..resources import SiroApiResource, WarehouseResource
from ..settings import PipelineSettings
from ...api_client.timestamps import format_ts
from ...warehouse.identity import check_organization, recorded_organization
from ...warehouse.staging import RecordingsStage
from ...warehouse.swap import swap_partitions
from ...warehouse.upsert import upsert_recordings


# DuckDB's buffer pool for the swap or upsert: it streams the stage into the warehouse,
# so a smaller pool costs nothing, and it keeps the run's peak memory flat however
# large the days (the connection is this step's own, closed right after): with the
# stage's 128 MB, a 200,000-recording day peaks at ~360 MiB (`bench/memory.py`).
SWAP_MEMORY_LIMIT = "160MB"

_PREVIEW_SQL = """
SELECT id, strftime(created_at, '%Y-%m-%d %H:%M:%S.%g') AS created_at, title, deleted,
       crm IS NOT NULL AS linked, len(summary) AS summary_sections,
       len(entity_extractions) AS extractions
FROM recordings
WHERE partition_date IN (SELECT unnest($p::DATE[]))
ORDER BY created_at, id
LIMIT 5
"""

_COUNTS_SQL = """
SELECT count(*), count(*) FILTER (WHERE deleted), count(*) FILTER (WHERE crm IS NOT NULL),
       count(*) FILTER (WHERE root_data_purged_at IS NOT NULL)
FROM recordings
WHERE partition_date IN (SELECT unnest($p::DATE[]))
"""


def _markdown_table(columns: list[str], rows: list[tuple]) -> str:
    def cell(value) -> str:
        text = "" if value is None else str(value)
        return text.replace("|", "\\|").replace("\n", " ")[:80]

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


class RecordingsConfig(Config):
    """Run configuration of `<key_prefix>/recordings` (all optional). `warehouse/swap.py`
    names `allow_removals` in its refusal message, with the instance's op name."""

    allow_removals: bool = Field(
        default=False,
        description=(
            "Let this run remove recordings the warehouse holds but the API no longer lists "
            "(a genuine purge). Off, such a run fails and keeps the rows: the API never drops "
            "a recording, so a shrinking day means an API incident."
        ),
    )


def _check_organization_before_fetching(warehouse: WarehouseResource, organization_id: str) -> None:
    """Fail at once (not after an hour of fetching) if the warehouse is another organization's."""
    if not warehouse.exists():
        return
    with warehouse.read_connection() as con:
        recorded = recorded_organization(con)
    check_organization(recorded, organization_id, database=f"The warehouse {warehouse.describe()}")


RECORDINGS_TABLE_SCHEMA = raw_table_schema()


def build_recordings_asset(settings: PipelineSettings) -> AssetsDefinition:
    """`<key_prefix>/recordings` for one instance; its resources are the instance's own keys."""
    api_key, warehouse_key = settings.api_resource_key, settings.warehouse_resource_key

    @asset(
        key=settings.key("recordings"),
        partitions_def=settings.partitions_def,
        backfill_policy=BackfillPolicy.single_run(),
        # No pool: most of this step is waiting on the API, and a 30-day backfill must not
        # hold the warehouse slot while it does. Its one write, the swap, takes the
        # warehouse's writer lock (WarehouseResource.get_connection) for the transaction only.
        group_name=settings.group("ingest"),
        owners=list(settings.owners),
        tags=dict(settings.tags),
        kinds=RAW_KINDS,
        code_version=raw_code_version(),
        freshness_policy=RAW_FRESHNESS_POLICY,
        metadata=table_metadata(settings.table_name("recordings"), RECORDINGS_TABLE_SCHEMA),
        required_resource_keys={api_key, warehouse_key},
    )
    def recordings(context: AssetExecutionContext, config: RecordingsConfig) -> MaterializeResult:
        """Every Siro recording, one row per recording, in the UTC day of its `createdAt`.

        Table `recordings` of the instance's schema (`siro.recordings` by default), one row
        per `id` (checked by `id_unique`), partition column `partition_date`.
        Typed core columns (`created_at`, `updated_at`, `deleted`, `root_data_purged_at`, ...)
        sit next to `payload`, the whole API object as JSON (unknown fields included), and
        the typed nested columns `crm`, `summary` and `entity_extractions` that derived tables
        unnest. Deleted and purged recordings stay here, flagged, so consumers can reconcile.

        Each run lists the partition days with every enrichment flag on, stages the pages in
        a private DuckDB file, then replaces the days in one transaction: a failed run
        leaves the previous rows untouched. A range of days runs as one run.

        The swap merges per id: rows changed since this run began fetching (by another,
        overlapping run) are kept; a swap that would remove recordings the API no longer
        lists is refused unless run config `allow_removals` is set (a genuine purge); and
        the warehouse serves one Siro organization, recorded on its first write.
        """
        return materialize_recordings(
            context, config, getattr(context.resources, api_key), getattr(context.resources, warehouse_key)
        )

    return recordings


def materialize_recordings(
    context: AssetExecutionContext,
    config: RecordingsConfig,
    siro_api: SiroApiResource,
    warehouse: WarehouseResource,
) -> MaterializeResult:
    """Fetch the run's days and swap (or upsert) them into the raw table, in one transaction."""
    started = time.monotonic()
    days: list[date] = dates_in_range(context.partition_key_range)
    # Taken before the first list request: whatever the warehouse holds that is newer
    # than this came from a run that fetched later, and this run must not undo it.
    fetched_at = siro_api.now()
    identity = siro_api.verify_token()
    _check_organization_before_fetching(warehouse, identity.organization_id)
    context.log.info(
        f"Token OK for organization {identity.organization_id}; fetching {len(days)} day(s) "
        f"{partition_key(days[0])}..{partition_key(days[-1])}"
    )

    # A sensor-driven run carries the oldest change's updatedAt: it fetches only what
    # changed and upserts it; every other run re-pulls its days whole.
    since = updated_since(context.run.tags)
    # A webhook-driven run names its recordings: it fetches exactly those and upserts them.
    ids = recording_ids(context.run.tags)
    upsert = since is not None or bool(ids)
    if since is not None:
        context.log.info(f"Sensor-driven refresh: recordings updated since {format_ts(since)}")
    # Stage beside the warehouse: the same disk, not a /tmp that may be RAM-backed.
    with RecordingsStage(directory=warehouse.staging_directory()) as stage:
        client = siro_api.async_client()

        async def fetch():
            async with client:
                if ids:
                    return await stage_ids(client, stage, ids)
                if since is not None:
                    return await stage_changed(client, stage, days, since, page_size=siro_api.page_size)
                return await stage_days(
                    client,
                    stage,
                    days,
                    concurrency=siro_api.max_concurrent_windows,
                    page_size=siro_api.page_size,
                )

        report = asyncio.run(fetch())
        staged = stage.finalize(days)
        if staged.outside_window:
            context.log.warning(
                f"The API returned {staged.outside_window} recording(s) created outside the "
                "requested windows; they were left for their own partitions."
            )
        with warehouse.get_connection() as con:
            con.execute(f"SET memory_limit = '{SWAP_MEMORY_LIMIT}'")
            if upsert:
                inserted = upsert_recordings(con, stage, organization_id=identity.organization_id)
            else:
                inserted = swap_partitions(
                    con,
                    stage,
                    days,
                    fetched_at=fetched_at,
                    organization_id=identity.organization_id,
                    allow_removals=config.allow_removals,
                    op_name=context.op_def.name,
                )
            rows, deleted, linked, purged = con.execute(_COUNTS_SQL, {"p": days}).fetchone()
            preview_rows = con.execute(_PREVIEW_SQL, {"p": days}).fetchall()

    stats = client.stats
    return MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "dagster/table_name": f"{warehouse.table_schema}.recordings",
            "rows_inserted": inserted,
            "deleted": deleted,
            "linked": linked,
            "purged": purged,
            "partitions": len(days),
            "duplicates_dropped": staged.duplicates_dropped,
            "api_requests": stats.requests,
            "api_pages": stats.pages,
            "api_retries": stats.retries,
            "api_429s": stats.rate_limited,
            "api_5xx": stats.server_errors,
            "api_bytes": stats.bytes,
            "fetch": (f"{len(ids)} notified id(s)" if ids else
                      "changed since " + format_ts(since) if since is not None else "whole days"),
            "windows": report.windows,
            "window_splits": report.splits,
            "page_size_served": report.served_page_size,
            "max_in_flight": report.max_concurrency,
            "duration_seconds": round(time.monotonic() - started, 3),
            "fetched_up_to": format_ts(siro_api.now()),
            "preview": MetadataValue.md(
                _markdown_table(
                    ["id", "created_at", "title", "deleted", "linked", "summary_sections", "extractions"],
                    preview_rows,
                )
            ),
        }
    )
