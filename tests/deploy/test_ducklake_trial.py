"""Optional: the pipeline's SQL on DuckLake (PostgreSQL catalog) via bench/ducklake_trial.py.

DuckDB extensions are built per DuckDB version. The project runs DuckDB 2.0; PyPI packages
the ducklake / postgres_scanner extensions (`duckdb-extension-*`) only up to DuckDB 1.5.5,
and `INSTALL ducklake` needs extensions.duckdb.org, which these machines cannot reach. So
the trial runs in a side environment with DuckDB 1.5.5 (see the script's docstring) and
this test runs only when SIRO_DUCKLAKE_PYTHON names that environment's interpreter.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import duckdb
import pytest

from .postgres_cluster import find_postgres_bin

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def _ducklake_python() -> str:
    python = os.environ.get("SIRO_DUCKLAKE_PYTHON")
    if not python:
        pytest.skip(
            f"DuckLake trial not configured: this DuckDB is {duckdb.__version__}, the packaged "
            "ducklake/postgres_scanner extensions on PyPI stop at 1.5.5 and the extension "
            "repository is unreachable; set SIRO_DUCKLAKE_PYTHON to a DuckDB 1.5.5 venv "
            "(bench/ducklake_trial.py says how) to run it"
        )
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
