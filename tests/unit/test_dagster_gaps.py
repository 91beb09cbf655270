"""Every private Dagster run-tag literal lives in `pipeline/automation/dagster_gaps.py`."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "siro_assets"
GAPS = PACKAGE / "pipeline" / "automation" / "dagster_gaps.py"

# Metadata keys Dagster documents for users to set (table name, row count, schema,
# lineage, freshness); they are part of the public metadata API, not run tags.
PUBLIC_METADATA_KEYS = {"dagster/row_count", "dagster/column_schema", "dagster/table_name",
                        "dagster/column_lineage", "dagster/fresh_until_timestamp"}


def _docstring_nodes(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def dagster_literals(path: Path) -> set[str]:
    """`dagster/...` string literals in `path`, docstrings left out."""
    tree = ast.parse(path.read_text(), filename=str(path))
    docs = _docstring_nodes(tree)
    return {node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and node.value.startswith("dagster/") and id(node) not in docs}


def test_private_dagster_tags_are_spelled_only_in_the_gaps_module():
    found = {str(p.relative_to(PACKAGE)): sorted(dagster_literals(p) - PUBLIC_METADATA_KEYS)
             for p in sorted(PACKAGE.rglob("*.py")) if p != GAPS}
    assert {k: v for k, v in found.items() if v} == {}
    assert dagster_literals(GAPS) >= {"dagster/partition", "dagster/asset_partition_range_start",
                                      "dagster/asset_partition_range_end"}


def test_the_gaps_module_names_its_upstream_reference():
    doc = ast.get_docstring(ast.parse(GAPS.read_text()))
    assert doc and "dagster-io/dagster" in doc
