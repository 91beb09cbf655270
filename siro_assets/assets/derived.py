"""Every asset derived from `siro/recordings`, for `Definitions`."""

from __future__ import annotations

from .crm import recording_crm, recording_crm_links
from .extractions import recording_entity_extractions
from .stats import recording_daily_stats
from .summaries import recording_summaries
from .writebacks import crm_writeback_plan

derived_assets = [
    recording_crm_links,
    recording_crm,
    recording_summaries,
    recording_entity_extractions,
    recording_daily_stats,
    crm_writeback_plan,
]

__all__ = ["derived_assets"]
