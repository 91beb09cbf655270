"""CRM links of each recording, in long form (`recording_crm_links`) and wide form (`recording_crm`).

Both read the raw table's typed `crm` STRUCT. An object reference with neither a Siro
id nor an external id (`{}` or a null array element) is not a link and is dropped in
both forms, so the long and wide tables always describe the same links.
"""

from __future__ import annotations

from .sql_fragments import IS_CRM_REF
from .table import PARTITION_DATE, RECORDING_ID, Column, DerivedTable, live_recordings


OBJECT_TYPES = ("user", "engagement", "opportunity", "contact", "account", "lead")

_LINKS_SELECT = f"""
WITH linked AS (
    SELECT * FROM ({live_recordings("crm")}) WHERE crm IS NOT NULL
),
refs AS (
    SELECT partition_date, id, crm.integrationConnectionId AS icid, 'user' AS object_type,
           generate_subscripts(crm.users, 1) - 1 AS position, unnest(crm.users) AS ref
    FROM linked
    UNION ALL
    SELECT partition_date, id, crm.integrationConnectionId, 'contact',
           generate_subscripts(crm.contacts, 1) - 1, unnest(crm.contacts)
    FROM linked
    UNION ALL
    SELECT partition_date, id, crm.integrationConnectionId, 'engagement', 0, crm.engagement FROM linked
    UNION ALL
    SELECT partition_date, id, crm.integrationConnectionId, 'opportunity', 0, crm.opportunity FROM linked
    UNION ALL
    SELECT partition_date, id, crm.integrationConnectionId, 'account', 0, crm.account FROM linked
    UNION ALL
    SELECT partition_date, id, crm.integrationConnectionId, 'lead', 0, crm.lead FROM linked
)
SELECT partition_date, id, icid, object_type, position, ref.id, ref.externalId
FROM refs
WHERE {IS_CRM_REF.format(ref="ref")}
"""

RECORDING_CRM_LINKS = DerivedTable(
    name="recording_crm_links",
    description=(
        "One row per CRM object a recording is linked to (long form of the API's `crm` "
        "block): its rep user(s), engagement, opportunity, contact(s), account and lead. "
        "Join `external_id` to the CRM object of type `object_type`, or `recording_id` to "
        "siro.recordings.id. Recordings without a confirmed link have no rows."
    ),
    columns=(
        PARTITION_DATE,
        RECORDING_ID,
        Column("integration_connection_id", "VARCHAR",
               "Siro integration connection the link came from (crm.integrationConnectionId).",
               ("crm",)),
        Column("object_type", "VARCHAR NOT NULL",
               "user, engagement, opportunity, contact, account or lead.", ("crm",)),
        Column("position", "INTEGER NOT NULL",
               "0-based index in crm.users / crm.contacts; 0 for the single objects.", ("crm",)),
        Column("siro_id", "VARCHAR", "Siro's internal id of the CRM object.", ("crm",)),
        Column("external_id", "VARCHAR", "The object's id in the CRM: join on this.", ("crm",)),
    ),
    select=_LINKS_SELECT,
)


def _ref_list(field: str, attr: str) -> str:
    # Empty list rather than NULL when absent, so consumers can unnest or len() without
    # a NULL check; siro and external id lists are filtered alike so they stay aligned.
    return (
        f"coalesce(list_transform(list_filter(crm.{field}, lambda r: "
        f"{IS_CRM_REF.format(ref='r')}), lambda r: r.{attr}), []::VARCHAR[])"
    )


_WIDE_SELECT = f"""
SELECT
    partition_date,
    id,
    created_at,
    crm.integrationConnectionId,
    crm.engagement.externalId,
    crm.opportunity.externalId,
    crm.account.externalId,
    crm.lead.externalId,
    {_ref_list("contacts", "externalId")},
    {_ref_list("users", "externalId")},
    crm.engagement.id,
    crm.opportunity.id,
    crm.account.id,
    crm.lead.id,
    {_ref_list("contacts", "id")},
    {_ref_list("users", "id")},
    crm IS NOT NULL
FROM ({live_recordings("created_at", "crm")})
"""

RECORDING_CRM = DerivedTable(
    name="recording_crm",
    description=(
        "One row per recording that is neither deleted nor purged, with the external ids of "
        "its linked CRM objects side by side, ready to join a CRM: e.g. "
        "`engagement_external_id` to the CRM appointment, `account_external_id` to the "
        "account, `unnest(contact_external_ids)` to contacts. Join `recording_id` to "
        "siro.recordings.id. Recordings not linked yet (`crm` null) appear with "
        "`is_linked = false` and null ids."
    ),
    columns=(
        PARTITION_DATE,
        RECORDING_ID,
        Column("created_at", "TIMESTAMPTZ NOT NULL", "When the recording was created (UTC).",
               ("created_at",)),
        Column("integration_connection_id", "VARCHAR", "Siro integration connection of the links.",
               ("crm",)),
        Column("engagement_external_id", "VARCHAR", "CRM id of the engagement / appointment.", ("crm",)),
        Column("opportunity_external_id", "VARCHAR", "CRM id of the opportunity.", ("crm",)),
        Column("account_external_id", "VARCHAR", "CRM id of the account.", ("crm",)),
        Column("lead_external_id", "VARCHAR", "CRM id of the lead.", ("crm",)),
        Column("contact_external_ids", "VARCHAR[] NOT NULL",
               "CRM ids of the contacts in API order; [] when none.", ("crm",)),
        Column("user_external_ids", "VARCHAR[] NOT NULL",
               "CRM ids of the rep user(s) in API order; [] when none.", ("crm",)),
        Column("engagement_siro_id", "VARCHAR", "Siro id of the engagement.", ("crm",)),
        Column("opportunity_siro_id", "VARCHAR", "Siro id of the opportunity.", ("crm",)),
        Column("account_siro_id", "VARCHAR", "Siro id of the account.", ("crm",)),
        Column("lead_siro_id", "VARCHAR", "Siro id of the lead.", ("crm",)),
        Column("contact_siro_ids", "VARCHAR[] NOT NULL",
               "Siro ids of the contacts, aligned with contact_external_ids.", ("crm",)),
        Column("user_siro_ids", "VARCHAR[] NOT NULL",
               "Siro ids of the users, aligned with user_external_ids.", ("crm",)),
        Column("is_linked", "BOOLEAN NOT NULL", "Whether the API returned a crm block (a confirmed link).",
               ("crm",)),
    ),
    select=_WIDE_SELECT,
)
