"""Asset checks count offenders and pick their samples in SQL: however many rows offend,
only a sample's worth of ids and days is fetched into Python."""

from __future__ import annotations

import duckdb

from siro_assets.pipeline.checks import SAMPLE_SIZE, evaluate_offenders

OFFENDERS = """
SELECT CASE WHEN i % 100 = 0 THEN NULL ELSE printf('r%05d', i) END AS recording_id,
       DATE '2026-01-01' + (i % 40)::INTEGER AS partition_date
FROM range(20000) AS t(i)
"""


class _Counting:
    """A connection that records how many values each fetch brought into Python."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.fetched: list[int] = []

    def execute(self, *args, **kwargs):
        self.con.execute(*args, **kwargs)
        return self

    def _count(self, rows):
        self.fetched.append(sum(len(v) if isinstance(v, list) else 1 for row in rows for v in row))
        return rows

    def fetchone(self):
        row = self.con.fetchone()
        self._count([row] if row is not None else [])
        return row

    def fetchall(self):
        return self._count(self.con.fetchall())


def test_samples_come_from_sql_not_from_every_offender():
    con = _Counting(duckdb.connect())
    result = evaluate_offenders(con, (), OFFENDERS)
    meta = {k: getattr(v, "value", v) for k, v in result.metadata.items()}
    assert not result.passed
    assert meta["offending_rows"] == 20000 and meta["offending_partitions"] == 40
    assert meta["sample_recording_ids"] == ["r00001", "r00002", "r00003", "r00004", "r00005"]
    assert meta["sample_partitions"] == [f"2026-01-{d:02d}" for d in range(1, 11)]
    # Never more than a sample per fetch (old code fetched all 19,800 ids and 40 days).
    assert max(con.fetched) <= SAMPLE_SIZE * 2


def test_no_offenders_passes_with_empty_samples():
    con = _Counting(duckdb.connect())
    result = evaluate_offenders(con, (), f"SELECT * FROM ({OFFENDERS}) WHERE false")
    assert result.passed and result.metadata["offending_rows"].value == 0
    assert result.metadata["sample_recording_ids"].value == [] and result.metadata["sample_partitions"].value == []
