"""bench/lake.py's writers part, scaled down: one, two and (taking turns) two processes on
different days of a lake on S3 (real PostgreSQL, moto), and a DuckDB file with one and two.

It replaces the former bench/ducklake_trial.py's test. The lake's correctness under
concurrent writers is tests/lake's; this keeps the benchmark itself runnable.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from siro_assets.warehouse.lake import lake_unavailable

from .postgres_cluster import find_postgres_bin

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_the_lake_benchmark_runs_every_writer_configuration_to_the_same_rows():
    reason = lake_unavailable(s3=True)
    if reason:
        pytest.skip(f"DuckLake cannot run with this DuckDB: {reason}")
    if find_postgres_bin() is None:
        pytest.skip("PostgreSQL server binaries not found (apt-get install -y postgresql)")
    pytest.importorskip("moto.server", reason="moto[server] is not installed")
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "lake.py"), "--days", "2", "--per-day", "20", "--writers", "1,2",
         "--parts", "writers"],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "FAILED" not in output, output[-4000:]
    lines = re.findall(r"^(DuckDB file|lake on S3|lake, turns)\s+(\d)\s+[\d.]+s\s+[\d,]+\s+[\d.]+x\s+\d+\s+(\d+)$",
                       output, flags=re.M)
    assert sorted((label, n) for label, n, _ in lines) == sorted(
        [("DuckDB file", "1"), ("DuckDB file", "2"), ("lake on S3", "1"), ("lake on S3", "2"), ("lake, turns", "2")]
    ), output
    # Every configuration wrote the same days whole.
    assert len({rows for _, _, rows in lines}) == 1 and int(lines[0][2]) > 0, output
