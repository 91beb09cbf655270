"""Every public name the CRM modules define has a user in the package (issue 17, "The
house itself"): code kept only for its own test is dead and goes."""

from __future__ import annotations

import ast
from pathlib import Path

import siro_assets

PACKAGE = Path(siro_assets.__file__).parent
SCANNED = ("crm", "pipeline/writebacks")


def _defined(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return {n for n in names if not n.startswith("_")}


def _used(tree: ast.Module) -> set[str]:
    # Loads only: an import or an `__all__` entry re-exports a name, it does not use it.
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return used | {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}


def test_every_public_crm_name_has_a_user_in_the_package():
    trees = {p: ast.parse(p.read_text()) for p in PACKAGE.rglob("*.py")}
    used = set().union(*map(_used, trees.values()))
    dead = {
        f"{p.relative_to(PACKAGE)}:{name}"
        for p, tree in trees.items() if p.relative_to(PACKAGE).as_posix().startswith(SCANNED)
        for name in _defined(tree) - used
    }
    assert not dead, sorted(dead)
