"""One delivery in its own process, as a `dg launch` or CLI run would make it:
`python -m tests.e2e.deliver_process DB BASE_URL RUN_ID START_AT DAY...`.

Waits until the wall-clock `START_AT` (epoch seconds) so that two such processes start
their deliveries at the same moment, then prints the report as one JSON line.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import date

from siro_assets.crm import Delivery
from siro_assets.pipeline.resources import WarehouseResource
from tests.e2e.processes import fake_crm_routing


def main(argv: list[str]) -> int:
    database, base, run_id, start_at, *days = argv
    routing = fake_crm_routing(base, batch_size=10)
    warehouse = WarehouseResource(database=database)
    delivery = Delivery(warehouse.get_connection, routing, run_id=run_id)
    time.sleep(max(0.0, float(start_at) - time.time()))
    report = delivery.run([date.fromisoformat(d) for d in days])
    print(json.dumps({**report.metadata(), "stopped": report.stopped}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
