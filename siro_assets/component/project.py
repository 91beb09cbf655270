"""The shipped project's own instance, for scripts and tests: `defs/siro/defs.yaml` loaded now."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg

PROJECT_DEFS = Path(__file__).resolve().parents[1] / "definitions.py"


def project_definitions() -> dg.Definitions:
    """The shipped project's definitions, resolved against the environment as it is now
    (the README's variables map onto the component's attributes in its `defs.yaml`)."""
    return dg.load_from_defs_folder(path_within_project=PROJECT_DEFS.parent)


def project_resources() -> dict[str, Any]:
    """The shipped instance's resources by key (`siro_api`, `siro_warehouse`, `siro_crm`, ...)."""
    return dict(project_definitions().resources)


def project_warehouse_path() -> Path:
    """The warehouse file the shipped instance writes (`SIRO_DUCKDB_PATH` or the default)."""
    return Path(project_resources()["siro_warehouse"].database)
