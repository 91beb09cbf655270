"""The repo's code location on a compressed clock, for the daemon-level outage test.

Loaded by `dagster-daemon -m tests.e2e.compressed_clock_defs` (and so by its code
server and run workers). `SIRO_E2E_CLOCK="<epoch seconds>,<speed>"` makes the sensor's
wall clock (the base of the pending days' backoff) run `speed` times faster from that
instant, in step with the simulator's clock in the test, and the job's step retries
pause one second instead of 20 s and 40 s: minutes of outage fit in seconds, with
every decision the same as in production. Nothing else differs from
`siro_assets.definitions`.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone

from dagster import RetryPolicy

from siro_assets.pipeline.automation import jobs, sensors

_start, _speed = (float(v) for v in os.environ["SIRO_E2E_CLOCK"].split(","))


def compressed_now() -> datetime:
    """The instant `SIRO_E2E_CLOCK` started at, plus `speed` times the real time since."""
    return datetime.fromtimestamp(_start + (time.time() - _start) * _speed, timezone.utc)


# Before the component builds its job: `build_recordings_job` reads the policy then.
jobs.STEP_RETRY_POLICY = RetryPolicy(max_retries=jobs.STEP_RETRY_POLICY.max_retries, delay=1)
sensors.wall_clock = compressed_now

from siro_assets.definitions import defs  # noqa: E402,F401
