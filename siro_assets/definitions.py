"""The code location: everything under `defs/`, plus what is global (resources, executor).

`dg` and `dagster` both load `defs` from here (`[tool.dagster]` / `[tool.dg]` in
pyproject.toml, and workspace.yaml for the classic `dagster dev`).
"""

from pathlib import Path

import dagster as dg

from .pipeline.resources import build_resources_from_env

defs = dg.Definitions.merge(
    dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
    dg.Definitions(
        resources=build_resources_from_env(),
        # Every step writes the same DuckDB file, which admits one writing process: running
        # a run's steps in one process avoids lock waits between them (and a process spawn
        # per step); concurrency *between* runs is bounded by the `siro_duckdb` pool.
        executor=dg.in_process_executor,
    ),
)
