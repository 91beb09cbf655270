"""The code location: the component instances under `defs/` (today one, `defs/siro/defs.yaml`).

`dg` and `dagster` both load `defs` from here (`[tool.dagster]` / `[tool.dg]` in
pyproject.toml, and workspace.yaml for the classic `dagster dev`). Nothing global is
added: the executor belongs to each job and the resources to each instance.
"""

from pathlib import Path

import dagster as dg

defs = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
