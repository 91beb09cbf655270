"""`make demo`: materialize the last few days against the built-in simulator.

Runs the real `dg launch` command (one run per day, the asset checks included) and then
prints what landed in DuckDB and how to look at it in the UI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

DAYS = int(os.environ.get("SIRO_DEMO_DAYS", "3"))
ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    os.environ.setdefault("SIRO_SIMULATOR", "1")
    os.chdir(ROOT)
    from siro_assets.component.project import project_warehouse_path
    from siro_assets.warehouse.connection import duckdb_connection

    today = datetime.now(timezone.utc).date()
    # One run per day, oldest first, as the nightly schedule would have run them: each day's
    # materialization then carries its own row count, API requests, 429s and duration, so the
    # asset pages plot a series (a range is one run, whose numbers every day would share).
    # The selection's asset checks run in the same runs.
    for offset in range(DAYS, 0, -1):
        day = today - timedelta(days=offset)
        command = [
            str(Path(sys.executable).parent / "dg"),
            "launch",
            "--assets",
            "siro/recordings*",
            "--partition",
            f"{day:%Y-%m-%d}",
            # INFO rather than Dagster's DEBUG event stream: the demo should be readable.
            "--config-json",
            json.dumps({"loggers": {"console": {"config": {"log_level": "INFO"}}}}),
        ]
        print(f"Materializing {day} and its checks against the simulator:\n  {' '.join(command)}", flush=True)
        result = subprocess.run(command)
        if result.returncode:
            return result.returncode

    # The same variables the run resolved (SIRO_DUCKDB_PATH or the simulator default);
    # the resource holds an `EnvVar` for it, which only Dagster may resolve.
    database = project_warehouse_path().resolve()
    with duckdb_connection(database, read_only=True) as con:
        tables = con.execute(
            "SELECT table_name, estimated_size FROM duckdb_tables() WHERE schema_name = 'siro' ORDER BY 1"
        ).fetchall()
        print(f"\nDuckDB file: {database}")
        for name, _ in tables:
            count = con.execute(f"SELECT count(*) FROM siro.{name}").fetchone()[0]
            print(f"  siro.{name:<32} {count:>8} rows")
    print(
        # The file is attached under a fixed alias, so this works whatever the file is
        # called (a file named siro.duckdb would make `siro.` ambiguous if opened directly).
        "\nOpen it:   .venv/bin/python -c \"from siro_assets.warehouse.connection import open_duckdb; "
        "print(open_duckdb(" + repr(str(database)).replace('"', '\\"') + ", read_only=True)"
        ".sql('FROM siro.recording_crm LIMIT 5'))\""
        "\nUI:        make dev   (SIRO_SIMULATOR=1 DAGSTER_HOME=$PWD .venv/bin/dg dev, then http://127.0.0.1:3000)"
        "\n           Lineage: every asset by group; an asset's Partitions tab shows the days above, its"
        "\n           Checks tab the checks they ran, its Overview plots row counts, API requests and durations."
        "\n           Automation: recordings_updated_sensor, nightly_recordings_schedule and"
        "\n           partition_freshness_schedule start RUNNING with the daemon (see README, 'The UI')."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
