"""`siro/recording_crm_links` and `siro/recording_crm`: the CRM objects each recording is linked to."""

# No `from __future__ import annotations`: Dagster inspects the real annotation
# objects of context and resource parameters.
from dagster import AssetExecutionContext, MaterializeResult

from ..resources import WarehouseResource
from ..transforms import RECORDING_CRM, RECORDING_CRM_LINKS
from .derived_factory import derived_asset, materialize_derived


@derived_asset(RECORDING_CRM_LINKS)
def recording_crm_links(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    """One row per CRM object a recording is linked to: the long form of the API's `crm` block.

    Table `siro.recording_crm_links`. `object_type` is `user`, `engagement`, `opportunity`,
    `contact`, `account` or `lead`; `external_id` is the object's id in the CRM (join on it),
    `siro_id` Siro's own id for it, `position` the 0-based index within `crm.users` /
    `crm.contacts` (0 for the single objects). Join `recording_id` to `siro.recordings.id`.
    Recordings with no confirmed link yet, and deleted or purged recordings, have no rows.
    Example: `SELECT recording_id, external_id FROM siro.recording_crm_links
    WHERE object_type = 'contact'` lists every recording-contact pair.
    """
    return materialize_derived(context, warehouse, RECORDING_CRM_LINKS)


@derived_asset(RECORDING_CRM)
def recording_crm(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    """One row per recording (neither deleted nor purged), with its CRM ids side by side.

    Table `siro.recording_crm`, unique on `recording_id` (joins `siro.recordings.id`).
    Join a CRM on `engagement_external_id` (the appointment), `opportunity_external_id`,
    `account_external_id`, `lead_external_id`, or unnest `contact_external_ids` /
    `user_external_ids` (lists, `[]` when none). The `*_siro_id(s)` columns hold Siro's ids
    for the same objects; `contact_siro_ids[i]` and `contact_external_ids[i]` are the same
    contact. Recordings not linked yet (`crm` null in the API) are here with
    `is_linked = false` and null ids, so this table also answers "what is still unlinked".
    """
    return materialize_derived(context, warehouse, RECORDING_CRM)
