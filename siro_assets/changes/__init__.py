"""What changed in Siro and what the sensor owes: pure bookkeeping, no I/O, no Dagster.

The `updatedAt` cursor, its deduplication and grouping into day ranges, the backlog
walk's budget, the failed-request bookkeeping, and the `createdAt` listing windows of a
backfill. May import `siro_assets.api_client.timestamps`; never Dagster, DuckDB, httpx or
`siro_assets.pipeline` (the sensor in `pipeline/automation/` is the Dagster half).
"""
