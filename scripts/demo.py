"""`make demo`: materialize the last few days against the built-in simulator.

Runs the real `dg launch` command (one run per day, the asset checks included) and then
prints what landed in the warehouse (the DuckDB file, or the DuckLake SIRO_WAREHOUSE=ducklake
names) and how to look at it in the UI.
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
    from siro_assets.warehouse.backend import lake_settings_from_env
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

    # The same variables the run resolved (SIRO_WAREHOUSE=ducklake with SIRO_DUCKLAKE_*, else
    # SIRO_DUCKDB_PATH or the simulator default); the resource holds `EnvVar`s, which only
    # Dagster may resolve.
    lake = lake_settings_from_env()
    database = None if lake is not None else project_warehouse_path().resolve()
    with duckdb_connection(database, lake=lake, read_only=True) as con:
        tables = con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name = 'siro' ORDER BY 1"
        ).fetchall()
        print(f"\nDuckLake at {lake.data_path} (catalog in PostgreSQL)" if lake else f"\nDuckDB file: {database}")
        for (name,) in tables:
            count = con.execute(f"SELECT count(*) FROM siro.{name}").fetchall()[0][0]
            print(f"  siro.{name:<32} {count:>8} rows")
    if lake is not None:
        # The same variables name the lake for any reader.
        open_it = ("\nOpen it:   .venv/bin/python -c \"from siro_assets.warehouse.backend import open_warehouse, "
                   "lake_settings_from_env; print(open_warehouse(lake=lake_settings_from_env(), read_only=True)"
                   ".sql('FROM siro.recording_crm LIMIT 5'))\"   (SIRO_WAREHOUSE, SIRO_DUCKLAKE_*, AWS_* set)")
    else:
        # The file is attached under a fixed alias, so this works whatever the file is
        # called (a file named siro.duckdb would make `siro.` ambiguous if opened directly).
        open_it = ("\nOpen it:   .venv/bin/python -c \"from siro_assets.warehouse.connection import open_duckdb; "
                   "print(open_duckdb(" + repr(str(database)).replace('"', '\\"') + ", read_only=True)"
                   ".sql('FROM siro.recording_crm LIMIT 5'))\"")
    print(
        open_it +
        "\nUI:        make dev   (SIRO_SIMULATOR=1 DAGSTER_HOME=$PWD .venv/bin/dg dev, then http://127.0.0.1:3000)"
        "\n           Lineage: every asset by group; an asset's Partitions tab shows the days above, its"
        "\n           Checks tab the checks they ran, its Overview plots row counts, API requests and durations."
        "\n           Automation: recordings_updated_sensor, nightly_recordings_schedule and"
        "\n           partition_freshness_schedule start RUNNING with the daemon (see README, 'The UI')."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
