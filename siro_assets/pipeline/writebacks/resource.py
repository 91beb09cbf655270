"""`CrmWritebackResource`: where CRM writes go, as Dagster configuration.

Either a routing file (`SIRO_CRM_CONNECTIONS`, whose `{env: NAME}` secrets resolve from
the run's environment) or one sink for every connection (`SIRO_CRM_SINK` and that sink's
variables). A setting left unset is read from the run's environment when the routing is
built, so secrets never sit in the resource's configuration; set ones are `repr=False`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import date

from dagster import ConfigurableResource
from pydantic import Field

from ...crm import Delivery, DeliveryReport, Routing, load_routing, load_routing_file

# Settings and the variable each one is read from.
ENV_FIELDS: dict[str, str] = {
    "connections_file": "SIRO_CRM_CONNECTIONS",
    "sink": "SIRO_CRM_SINK",
    "salesforce_login_url": "SIRO_SALESFORCE_LOGIN_URL",
    "salesforce_client_id": "SIRO_SALESFORCE_CLIENT_ID",
    "salesforce_client_secret": "SIRO_SALESFORCE_CLIENT_SECRET",
    "salesforce_api_version": "SIRO_SALESFORCE_API_VERSION",
    "hubspot_base_url": "SIRO_HUBSPOT_BASE_URL",
    "hubspot_token": "SIRO_HUBSPOT_TOKEN",
    "writeback_url": "SIRO_CRM_WRITEBACK_URL",
    "crm_token": "SIRO_CRM_TOKEN",
}


class CrmWritebackResource(ConfigurableResource):
    """Routing of CRM field writes to the outbox, Salesforce, HubSpot or an HTTP endpoint."""

    connections_file: str | None = Field(
        default=None, description="YAML routing file by connection id (SIRO_CRM_CONNECTIONS); overrides `sink`.")
    sink: str | None = Field(
        default=None, description="outbox (the default), salesforce, hubspot or http (SIRO_CRM_SINK).")
    salesforce_login_url: str | None = None
    salesforce_client_id: str | None = Field(default=None, repr=False)
    salesforce_client_secret: str | None = Field(default=None, repr=False)
    salesforce_api_version: str | None = None
    hubspot_base_url: str | None = None
    hubspot_token: str | None = Field(default=None, repr=False)
    writeback_url: str | None = None
    crm_token: str | None = Field(default=None, repr=False)
    dry_run: bool = Field(default=False, description="Send nothing; log what would be sent (SIRO_CRM_DRY_RUN=1).")

    def routing(self) -> Routing:
        """The routing in force; raises `CrmConfigError` naming what is missing.

        A setting left unset in the configuration is read from the run's environment: a
        code server started without the CRM secrets must not bake "no secret" into the
        runs that have them.
        """
        settings = {}
        for name, variable in ENV_FIELDS.items():
            value = getattr(self, name)
            value = os.environ.get(variable) if value is None else str(value)
            if value:
                settings[variable] = value
        if settings.get("SIRO_CRM_CONNECTIONS"):
            return load_routing_file(settings["SIRO_CRM_CONNECTIONS"], os.environ)
        return load_routing(settings)

    def deliver(
        self,
        connect: Callable[[], AbstractContextManager],
        *,
        run_id: str,
        partitions: Sequence[date] | None,
        dry_run: bool = False,
        retry_rejects: bool = False,
        log=None,
    ) -> DeliveryReport:
        """Deliver every due write; `connect` is opened only around ledger reads and writes."""
        options = {"log": log} if log is not None else {}
        delivery = Delivery(
            connect, self.routing(), run_id=run_id, dry_run=dry_run or self.dry_run,
            retry_rejects=retry_rejects, **options,
        )
        return delivery.run(partitions)

