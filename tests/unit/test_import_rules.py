"""Each folder imports only what its `__init__` docstring allows (see docs/ARCHITECTURE.md)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "siro_assets"

# folder -> top-level modules (or siro_assets subpackages) it must never import.
FORBIDDEN: dict[str, set[str]] = {
    "api_client": {"dagster", "dagster_duckdb", "duckdb", "siro_assets.pipeline", "siro_assets.defs", "siro_assets.component", "siro_assets.warehouse",
                   "siro_assets.transforms", "siro_assets.simulator", "siro_assets.crm"},
    "transforms": {"dagster", "dagster_duckdb", "httpx", "siro_assets.pipeline", "siro_assets.defs", "siro_assets.component", "siro_assets.api_client",
                   "siro_assets.simulator", "siro_assets.crm"},
    "warehouse": {"dagster", "dagster_duckdb", "httpx", "siro_assets.pipeline", "siro_assets.defs", "siro_assets.component", "siro_assets.api_client",
                  "siro_assets.simulator"},
    "simulator": {"dagster", "dagster_duckdb", "duckdb", "siro_assets.pipeline", "siro_assets.defs", "siro_assets.component", "siro_assets.warehouse",
                  "siro_assets.transforms", "siro_assets.crm"},
    "crm": {"dagster", "dagster_duckdb", "siro_assets.pipeline", "siro_assets.defs", "siro_assets.component",
            "siro_assets.simulator"},
    # The sensor's change tracking: pure bookkeeping, no I/O and no Dagster.
    "changes": {"dagster", "dagster_duckdb", "duckdb", "httpx", "siro_assets.pipeline", "siro_assets.defs",
                "siro_assets.component", "siro_assets.warehouse", "siro_assets.transforms",
                "siro_assets.simulator", "siro_assets.crm", "siro_assets.webhooks"},
    # The receiver never takes the DuckDB writer lock nor needs the API token; only its
    # `project` loads the project's component instances (EXEMPT below).
    "webhooks": {"dagster", "dagster_duckdb", "duckdb", "siro_assets.pipeline", "siro_assets.defs",
                 "siro_assets.component", "siro_assets.warehouse",
                 "siro_assets.transforms", "siro_assets.simulator", "siro_assets.crm",
                 "siro_assets.api_client.core", "siro_assets.api_client.sync_client",
                 "siro_assets.api_client.async_client"},
}

# (folder, file) -> modules that file may import despite its folder's rule.
EXEMPT: dict[tuple[str, str], set[str]] = {
    ("webhooks", "project.py"): {"dagster", "siro_assets.component", "siro_assets.component.SiroComponent"},
    # The simulator's Dagster resource: the one simulator module that knows Dagster, so
    # that the production resource carries no simulator settings.
    ("simulator", "resource.py"): {"siro_assets.pipeline.resources", "siro_assets.pipeline.resources.SiroApiResource",
                                   "pydantic", "pydantic.Field"},
}


def imported_modules(path: Path) -> set[str]:
    """Absolute names of every module `path` imports (relative imports resolved)."""
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def _violations(folder: str) -> list[str]:
    found = []
    for path in sorted((PACKAGE / folder).rglob("*.py")):
        allowed = EXEMPT.get((folder, path.name), set())
        for name in imported_modules(path) - allowed:
            for banned in FORBIDDEN[folder]:
                if name == banned or name.startswith(banned + "."):
                    found.append(f"{path.relative_to(PACKAGE)} imports {name}")
    return found


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_folder_respects_its_import_rule(folder):
    if not (PACKAGE / folder).is_dir():
        pytest.skip(f"siro_assets/{folder} does not exist yet")
    assert _violations(folder) == []


def test_the_rule_catches_a_violation(tmp_path, monkeypatch):
    fake = tmp_path / "siro_assets" / "transforms"
    fake.mkdir(parents=True)
    (fake / "bad.py").write_text("import httpx\nfrom ..pipeline.resources import WarehouseResource\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "siro_assets")
    assert sorted(_violations("transforms")) == [
        "transforms/bad.py imports httpx",
        "transforms/bad.py imports siro_assets.pipeline.resources",
        "transforms/bad.py imports siro_assets.pipeline.resources.WarehouseResource",
    ]


def test_every_folder_says_what_it_may_import():
    for init in sorted(PACKAGE.rglob("__init__.py")):
        docstring = ast.get_docstring(ast.parse(init.read_text()))
        assert docstring, f"{init.relative_to(PACKAGE.parent)} has no docstring"


def test_change_tracking_imports_without_dagster():
    """The rule above reads the source; this proves it at run time, transitive imports included.

    (httpx is not checked here: `api_client.timestamps` loads the `api_client` package.)"""
    modules = sorted(f"siro_assets.changes.{p.stem}" for p in (PACKAGE / "changes").glob("*.py")
                     if p.stem != "__init__")
    assert modules, "siro_assets/changes has no modules"
    code = (
        "import importlib, json, sys\n"
        f"for name in {['siro_assets.changes', *modules]!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('dagster', 'duckdb'))))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
