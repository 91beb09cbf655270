"""`build_pipeline_definitions`: every definition of one instance, from its settings.

The one place that assembles the factories of `pipeline/`: the raw and derived assets,
the writebacks, the checks, the job (which carries its own executor), the sensor and
the schedules. `SiroComponent.build_defs` calls it; so can a hand-written `Definitions`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster import Definitions

from .automation.jobs import build_recordings_job
from .automation.schedules import build_nightly_schedule
from .automation.sensors import build_updated_sensor
from .automation.webhook_sensor import build_webhook_sensor
from .checks import build_asset_checks, build_audit_job
from .derived.assets import build_derived_assets
from .freshness import build_partition_freshness
from .ingest.recordings import build_recordings_asset
from .settings import PipelineSettings
from .writebacks.assets import build_crm_writebacks_asset
from .writebacks.checks import build_writeback_check


def build_pipeline_definitions(settings: PipelineSettings, resources: Mapping[str, Any]) -> Definitions:
    """One instance's definitions; `resources` are bound under the instance's own keys."""
    job = build_recordings_job(settings)
    checks = build_asset_checks(settings)
    freshness_check, freshness_schedule = build_partition_freshness(settings)
    return Definitions(
        assets=[
            build_recordings_asset(settings),
            *build_derived_assets(settings),
            build_crm_writebacks_asset(settings),
        ],
        asset_checks=[*checks, freshness_check, build_writeback_check(settings)],
        jobs=[job, build_audit_job(settings, checks)],
        schedules=[build_nightly_schedule(settings, job), freshness_schedule],
        sensors=[
            build_updated_sensor(settings, job),
            # Only an instance with webhooks on has the sensor (and an inbox to drain).
            *([build_webhook_sensor(settings, job)] if settings.webhooks.enabled else []),
        ],
        resources=dict(resources),
    )
