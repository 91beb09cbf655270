"""The code location: the component instances under `defs/` (today one, `defs/siro/defs.yaml`).

`dg` and `dagster` both load `defs` from here (`[tool.dagster]` / `[tool.dg]` in
pyproject.toml, and workspace.yaml for the classic `dagster dev`). The component brings
no executor (its jobs carry their own); this project, as the owner of its code location,
picks the in-process executor for ad-hoc materializations too (`dg launch --assets`, the
UI's Materialize button): every step writes the same DuckDB file, so a process per step
would only add spawn time and lock waits. A project that adds the component picks its own.
"""

from pathlib import Path

import dagster as dg

defs = dg.Definitions.merge(
    dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
    dg.Definitions(executor=dg.in_process_executor),
)
