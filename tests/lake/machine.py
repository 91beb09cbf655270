"""One "machine" of the multi-machine lake tests: a process with its own DAGSTER_HOME
(its own SQLite instance storage) and scratch directory, configured only through the
documented environment (SIRO_WAREHOUSE, SIRO_DUCKLAKE_*, AWS_*, SIRO_API_*, SIRO_CRM_*).

    python -m tests.lake.machine backfill AT START_AT DAY [DAY ...]
    python -m tests.lake.machine sensor AT START_AT

`AT` (ISO instant) is the simulated time of this step: the simulator serving HTTP in the
test is frozen there, and the sensor's two clocks (the API's "now" and the tick's wall
clock) read it too, so a DuckDB-file reference replaying the same steps sees the same
API. `START_AT` (epoch seconds) is when to begin, so that two machines really overlap.
`backfill` runs `siro_recordings_job` (the raw table, every derived table, the
writebacks and the checks) once per day; `sensor` evaluates the shipped updatedAt
sensor from this machine's own cursor (a file in its scratch directory) and runs its
requests as the daemon would. Prints one JSON line: the runs and their outcomes.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from dagster import DagsterInstance, RetryPolicy, build_sensor_context


def _frozen_at(at: datetime) -> None:
    """Before the definitions load: the sensor's clocks read `at`, and the job's step
    retries pause one second (a lost lake race is retried inside the step; the pause is
    not what these tests measure)."""
    from siro_assets import SiroComponent
    from siro_assets.changes.tick_clock import TickClock
    from siro_assets.pipeline.automation import jobs
    from siro_assets.pipeline.resources import SiroApiResource

    jobs.STEP_RETRY_POLICY = RetryPolicy(max_retries=jobs.STEP_RETRY_POLICY.max_retries, delay=1)
    settings = SiroComponent.pipeline_settings
    SiroComponent.pipeline_settings = lambda self: replace(settings(self), clock=TickClock(wall=lambda: at))
    SiroApiResource.now = lambda self: at


def _launch(job, instance, request=None, partition_key=None) -> dict:
    from siro_assets.pipeline.automation.dagster_gaps import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG

    tags = {}
    if request is not None:
        # As the daemon launches it: the sensor's own tags (it reads its runs back by them).
        tags = {k: v for k, v in request.tags.items()
                if not k.startswith("dagster/") or k in (PARTITION_RANGE_START_TAG, PARTITION_RANGE_END_TAG)}
        partition_key = None if PARTITION_RANGE_START_TAG in tags else request.partition_key
    result = job.execute_in_process(partition_key=partition_key, tags=tags, instance=instance, raise_on_error=False)
    days = partition_key or f"{tags.get(PARTITION_RANGE_START_TAG)}...{tags.get(PARTITION_RANGE_END_TAG)}"
    return {"days": days, "success": result.success, "run_id": result.run_id,
            "changes_only": "siro/updated_since" in tags}


def main(argv: list[str]) -> int:
    command, at, start_at, *days = argv
    at = datetime.fromisoformat(at)
    _frozen_at(at)
    from siro_assets.definitions import defs
    from siro_assets.pipeline.automation.sensors import SENSOR_NAME

    job = defs.resolve_job_def("siro_recordings_job")
    time.sleep(max(0.0, float(start_at) - time.time()))
    runs = []
    with DagsterInstance.get() as instance:
        if command == "backfill":
            for day in days:
                runs.append(_launch(job, instance, partition_key=day))
        elif command == "sensor":
            cursor_file = Path(os.environ["SIRO_DUCKDB_PATH"]).parent / "sensor.cursor"
            cursor = cursor_file.read_text() if cursor_file.exists() else None
            sensor = defs.resolve_sensor_def(SENSOR_NAME)
            context = build_sensor_context(instance=instance, cursor=cursor, definitions=defs,
                                           resources={"siro_api": defs.resources["siro_api"]})
            tick = sensor.evaluate_tick(context)
            if tick.cursor:
                cursor_file.write_text(tick.cursor)
            for request in tick.run_requests or []:
                runs.append(_launch(job, instance, request))
        else:
            raise SystemExit(f"unknown command {command!r}")
    print(json.dumps({"runs": runs}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
