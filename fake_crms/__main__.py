"""CLI: `python -m fake_crms --port 8788` serves fake Salesforce
(`/salesforce`), HubSpot (`/hubspot`) and a generic CRM (`/http`) on 127.0.0.1."""

from __future__ import annotations

import argparse
import sys

from siro_assets.simulator.clock import WallClock
from .common import CrmFaults
from .generic import FakeHttpCrm
from .hubspot import FakeHubSpot
from .router import FakeCrms
from .salesforce import FakeSalesforce
from siro_assets.simulator.server import serve_until_signalled
from .server import run_in_thread


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGINT / SIGTERM."""
    p = argparse.ArgumentParser(prog="python -m fake_crms")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8788)
    p.add_argument("--fault-rate", type=float, default=0.0)
    p.add_argument("--fault-seed", type=int, default=0)
    p.add_argument("--salesforce-daily-limit", type=int, default=None)
    args = p.parse_args(argv)
    clock = WallClock()

    def faults(salt: int) -> CrmFaults:
        return CrmFaults(rate=args.fault_rate, seed=args.fault_seed + salt)

    crms = FakeCrms(
        salesforce=FakeSalesforce(clock, daily_limit=args.salesforce_daily_limit, faults=faults(1)),
        hubspot=FakeHubSpot(clock, faults=faults(2)),
        http=FakeHttpCrm(clock, faults=faults(3)),
    )
    base, stop = run_in_thread(crms, args.host, args.port)
    print(f"Fake CRMs on {base}: {base}/salesforce (client fake-client-id / fake-client-secret), "
          f"{base}/hubspot (token fake-hubspot-token), {base}/http (token fake-http-token)", flush=True)
    serve_until_signalled(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
