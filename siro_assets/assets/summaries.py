"""`siro/recording_summaries`: AI summary sections, one row per section."""

# No `from __future__ import annotations`: Dagster inspects the real annotation
# objects of context and resource parameters.
from dagster import AssetExecutionContext, MaterializeResult

from ..resources import WarehouseResource
from ..transforms import RECORDING_SUMMARIES
from .derived_factory import derived_asset, materialize_derived


@derived_asset(RECORDING_SUMMARIES)
def recording_summaries(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    """One row per section of a recording's AI summary.

    Table `siro.recording_summaries`, unique on (`recording_id`, `position`). `position` is
    the 0-based index of the section in the API's `summary` array: order by it to read a
    summary top to bottom. `section_id` is Siro's section id, `name` the section title,
    `content` the generated text, unmodified. Join `recording_id` to `siro.recordings.id`
    or `siro.recording_crm.recording_id`. Recordings without a summary yet, and deleted or
    purged ones, have no rows.
    """
    return materialize_derived(context, warehouse, RECORDING_SUMMARIES)
