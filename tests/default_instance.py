"""The shipped instance's definitions at default settings (`defs/siro/defs.yaml` with
nothing overridden), built once for the tests that run them piece by piece.

The package builds nothing at import: every factory takes a `PipelineSettings`.
"""

from __future__ import annotations

from siro_assets.pipeline.automation.jobs import build_recordings_job, pipeline_selection
from siro_assets.pipeline.automation.schedules import build_nightly_schedule
from siro_assets.pipeline.automation.sensors import build_updated_sensor
from siro_assets.pipeline.checks import build_audit_job, build_raw_checks, derived_table_checks
from siro_assets.pipeline.derived.assets import build_derived_assets
from siro_assets.pipeline.ingest.recordings import build_recordings_asset
from siro_assets.pipeline.settings import PipelineSettings
from siro_assets.pipeline.writebacks.assets import build_crm_writebacks_asset
from siro_assets.pipeline.writebacks.checks import build_writeback_check
from siro_assets.transforms import DERIVED_TABLES

SETTINGS = PipelineSettings()
daily_partitions = SETTINGS.partitions_def
RECORDINGS_KEY = SETTINGS.key("recordings")
CRM_WRITEBACKS_KEY = SETTINGS.key("crm_writebacks")

recordings = build_recordings_asset(SETTINGS)
derived_assets = build_derived_assets(SETTINGS)
crm_writebacks = build_crm_writebacks_asset(SETTINGS)
no_outstanding_rejects_or_failures = build_writeback_check(SETTINGS)

raw_asset_checks = build_raw_checks(SETTINGS)
derived_asset_checks = [check for table in DERIVED_TABLES for check in derived_table_checks(table, SETTINGS)]
asset_checks = [*raw_asset_checks, *derived_asset_checks]
warehouse_audit_job = build_audit_job(SETTINGS, asset_checks)

recordings_pipeline_selection = pipeline_selection(SETTINGS)
recordings_job = build_recordings_job(SETTINGS)
recordings_updated_sensor = build_updated_sensor(SETTINGS, recordings_job)
nightly_recordings_schedule = build_nightly_schedule(SETTINGS, recordings_job)
