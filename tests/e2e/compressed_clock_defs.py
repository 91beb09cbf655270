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

from dataclasses import replace

from dagster import RetryPolicy

from siro_assets import SiroComponent
from siro_assets.changes.tick_clock import TickClock
from siro_assets.pipeline.automation import jobs

_start, _speed = (float(v) for v in os.environ["SIRO_E2E_CLOCK"].split(","))


def compressed_now() -> datetime:
    """The instant `SIRO_E2E_CLOCK` started at, plus `speed` times the real time since."""
    return datetime.fromtimestamp(_start + (time.time() - _start) * _speed, timezone.utc)


# Before the component builds its job: `build_recordings_job` reads the policy then.
jobs.STEP_RETRY_POLICY = RetryPolicy(max_retries=jobs.STEP_RETRY_POLICY.max_retries, delay=1)
# The component builds its sensor from its settings, so the compressed wall clock rides
# in on them (the only test-side change to what the shipped defs.yaml loads).
_settings = SiroComponent.pipeline_settings
SiroComponent.pipeline_settings = lambda self: replace(_settings(self), clock=TickClock(wall=compressed_now))

from siro_assets.definitions import defs  # noqa: E402,F401
