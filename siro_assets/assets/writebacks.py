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
    Opportunity / Deal, Account / Company, Lead -> that object; Engagement / Appointment /
    Event / Meeting -> `crm.engagement`; Contact -> every `crm.contacts` element and User -> every `crm.users`
    element (one row each, `object_position` = index in the list).

    `plan_status` (first match wins): `unknown_model` (model not in that list),
    `no_field` (mapping without a field name), `unlinked` (recording has no `crm` block
    yet), `no_target` (no object of that model linked, or it has no external id),
    `ready` (write it). Only `ready` rows have `external_id` and `idempotency_key`. A
    recording linked later turns `ready` when its day is rematerialized, which the
    `updatedAt` sensor does. Extractions with null or `[]` mappings, and deleted or purged
    recordings, have no rows.

    `idempotency_key` is the sha256 hex of the canonical JSON array
    `[integration_connection_id, object_type, external_id, lower(trim(crm_field_name)),
    value, recording_id]`: this recording's write, equal on every rebuild; another
    recording writing the same value has another key (A -> B -> A). Whether a value is
    already in the CRM is judged by the delivery ledger against the field's last
    acknowledged value, not by this key.

    Joins: `recording_id` -> `siro.recordings.id`; (`recording_id`, `extraction_position`,
    `mapping_position`) -> `siro.recording_entity_extractions` (`position`,
    `mapping_position`); (`recording_id`, `object_type`, `object_position`) ->
    `siro.recording_crm_links` (`object_type`, `position`).

    Newest wins: `siro_assets.transforms.writeback_plan.LATEST_WRITES_SQL` selects, across
    all partitions, one `ready` row per (`integration_connection_id`, `object_type`,
    `external_id`, case-folded `crm_field_name`): the one from the newest
    `recording_created_at` of a recording live now (ties: the larger `recording_id`). That
    is the target `siro/crm_writebacks` compares with its ledger, so a field never goes
    back to an older recording's value, and a rejected newest value is never replaced by
    an older one.
    """
    return materialize_derived(context, warehouse, CRM_WRITEBACK_PLAN)
