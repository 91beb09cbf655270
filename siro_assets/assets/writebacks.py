"""`siro/crm_writeback_plan`: every extracted value resolved to the CRM record and field it would be written to."""

# No `from __future__ import annotations`: Dagster inspects the real annotation
# objects of context and resource parameters.
from dagster import AssetExecutionContext, MaterializeResult

from ..resources import WarehouseResource
from ..transforms import CRM_WRITEBACK_PLAN
from .derived_factory import derived_asset, materialize_derived


@derived_asset(CRM_WRITEBACK_PLAN)
def crm_writeback_plan(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    """One row per (recording, entity extraction, CRM field mapping, target CRM record) that could be written back.

    Table `siro.crm_writeback_plan`, unique on (`recording_id`, `extraction_position`,
    `mapping_position`, `object_position`). A row says: write `value` (the extracted value
    as JSON as sent; `value_text` / `value_type` as in `siro.recording_entity_extractions`)
    to field `crm_field_name` of the `crm_model_name` record `external_id`, through
    integration connection `integration_connection_id`.

    The target comes from the recording's own `crm` block, by model name, case-insensitive:
    Opportunity, Account, Lead -> that object; Engagement / Appointment / Event ->
    `crm.engagement`; Contact -> every `crm.contacts` element and User -> every `crm.users`
    element (one row each, `object_position` = index in the list).

    `plan_status` (first match wins): `unknown_model` (model not in that list),
    `no_field` (mapping without a field name), `unlinked` (recording has no `crm` block
    yet), `no_target` (no object of that model linked, or it has no external id),
    `ready` (write it). Only `ready` rows have `external_id` and `idempotency_key`. A
    recording linked later turns `ready` when its day is rematerialized, which the
    `updatedAt` sensor does. Extractions with null or `[]` mappings, and deleted or purged
    recordings, have no rows.

    `idempotency_key` is the sha256 hex of the canonical JSON array
    `[integration_connection_id, crm_model_name, external_id, crm_field_name, value]`:
    the same write has the same key on every rebuild; a different value, a different key.

    Joins: `recording_id` -> `siro.recordings.id`; (`recording_id`, `extraction_position`,
    `mapping_position`) -> `siro.recording_entity_extractions` (`position`,
    `mapping_position`); (`recording_id`, `object_type`, `object_position`) ->
    `siro.recording_crm_links` (`object_type`, `position`).

    Newest wins: `siro_assets.transforms.writeback_plan.LATEST_WRITES_SQL` selects, across
    all partitions, one `ready` row per (`integration_connection_id`, `crm_model_name`,
    `external_id`, `crm_field_name`): the one from the newest `recording_created_at` (ties:
    the larger `recording_id`). That is the candidate a delivery step compares with its
    ledger, so a field never goes back to an older recording's value.
    """
    return materialize_derived(context, warehouse, CRM_WRITEBACK_PLAN)
