"""CRM writebacks without Dagster: routing, value formats, schemas, sinks and the ledger.

`deliver(connect, load_routing(), run_id=...)` sends every due field write (the newest
live recording's value that differs from what the CRM last acknowledged) through the
sink its connection routes to, and records each attempt in `siro.crm_writeback_log`.

May import `siro_assets.transforms` (the target SQL), `siro_assets.warehouse` (schema),
`siro_assets.api_client.pacing` and `siro_assets.redaction` (secret scrubbing); never Dagster or the simulator (the fake CRMs are only
wired in by tests, through an httpx transport).
"""

from .config import CrmConfigError, Routing, load_routing, load_routing_file
from .delivery import Delivery, DeliveryReport, deliver
from .ledger import LOG_TABLE, OUTBOX_TABLE, STATE_TABLE, ensure_ledger, outstanding
from .sinks import SinkFactory
from .writes import FieldWrite, Outcome

__all__ = [
    "LOG_TABLE",
    "OUTBOX_TABLE",
    "STATE_TABLE",
    "CrmConfigError",
    "Delivery",
    "DeliveryReport",
    "FieldWrite",
    "Outcome",
    "Routing",
    "SinkFactory",
    "deliver",
    "ensure_ledger",
    "load_routing",
    "load_routing_file",
    "outstanding",
]
