"""`siro/recording_entity_extractions`: extracted values with the CRM fields they map to."""

# No `from __future__ import annotations`: Dagster inspects the real annotation
# objects of context and resource parameters.
from dagster import AssetExecutionContext, MaterializeResult

from ..resources import WarehouseResource
from ..transforms import RECORDING_ENTITY_EXTRACTIONS
from .derived_factory import derived_asset, materialize_derived


@derived_asset(RECORDING_ENTITY_EXTRACTIONS)
def recording_entity_extractions(
    context: AssetExecutionContext, warehouse: WarehouseResource
) -> MaterializeResult:
    """One row per (entity extraction, CRM field mapping) of a recording.

    Table `siro.recording_entity_extractions`, unique on (`recording_id`, `position`,
    `mapping_position`). `position` is the 0-based index of the extraction in the API's
    `entityExtractions`; an extraction whose `mappings` is null or `[]` has one row with
    null `crm_model_name` / `crm_field_name` / `mapping_position`.
    `value` is the extracted value as JSON (a number stays a number, an array an array;
    null or absent is JSON `null`), `value_type` one of string, number, boolean, null,
    array, and `value_text` a readable rendering (array elements joined with ", ").
    To write values back, join `recording_id` to `siro.recording_crm` and write `value` to
    field `crm_field_name` of the CRM object `crm_model_name` of that recording.
    """
    return materialize_derived(context, warehouse, RECORDING_ENTITY_EXTRACTIONS)
