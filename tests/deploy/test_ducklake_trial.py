"""Optional: the pipeline's SQL on DuckLake (PostgreSQL catalog) via bench/ducklake_trial.py.

DuckDB extensions are built per DuckDB version, and the machines cannot reach the extension
repository, so the project pins DuckDB 1.5.5, the last version PyPI packages the ducklake /
postgres_scanner extensions for (`duckdb-extension-*`, the `ducklake` extra). The trial runs
under this interpreter; SIRO_DUCKLAKE_PYTHON may name another one.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from .postgres_cluster import find_postgres_bin

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def _ducklake_python() -> str:
    python = os.environ.get("SIRO_DUCKLAKE_PYTHON")
    if not python:
        if importlib.util.find_spec("duckdb_extension_ducklake") is None:
            pytest.skip(
                f"the ducklake extension wheel for DuckDB {duckdb.__version__} is not installed "
                "(pip install -e '.[ducklake]')"
            )
        python = sys.executable
    if find_postgres_bin() is None:
        pytest.skip("PostgreSQL server binaries not found (apt-get install -y postgresql)")
    return python


def test_our_sql_on_ducklake_matches_a_duckdb_file_and_takes_two_writers():
    python = _ducklake_python()
    result = subprocess.run(
        [python, str(ROOT / "bench" / "ducklake_trial.py"), "--days", "2", "--per-day", "100"],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "row counts identical" in output
    assert output.count("concurrent writer") == 2 and "FAILED" not in output
