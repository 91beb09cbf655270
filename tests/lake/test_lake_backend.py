"""The pipeline's own SQL on DuckLake (PostgreSQL catalog; a directory or moto's S3) equals
the same work on a DuckDB file, and several writers, on other days or the same one, end
correct. Skips (saying why) where the DuckLake extensions do not match the DuckDB."""

from __future__ import annotations

import multiprocessing
from datetime import date

import duckdb
import pytest

from siro_assets.pipeline.resources import WarehouseResource
from siro_assets.warehouse.backend import open_warehouse
from siro_assets.warehouse.lake import LakeConnectError, LakeSettings, open_lake
from siro_assets.warehouse.swap import swap_partitions

from .support import day_records, snapshot, stage, swap_and_rebuild, write_days_in_process

DAY1, DAY2 = date(2026, 3, 2), date(2026, 3, 3)


def _file_reference(tmp_path, work: list[tuple[list[date], int]]) -> dict:
    """The tables after `work` (days, version), in order, on a DuckDB file."""
    con = open_warehouse(tmp_path / "reference.duckdb")
    for days, version in work:
        st = stage(tmp_path, day_records(days, version=version), days)
        swap_and_rebuild(con, st, days)
        st.close()
    result = snapshot(con)
    con.close()
    return result


def test_swap_and_every_derived_rebuild_on_the_lake_equal_a_duckdb_file(lake, tmp_path):
    days = [DAY1, DAY2]
    file_con = open_warehouse(tmp_path / "file.duckdb")
    lake_con = open_warehouse(lake=lake)
    for version in (1, 2):  # the second pass replaces every row: the delete path too
        st = stage(tmp_path, day_records(days, version=version), days)
        for con in (file_con, lake_con):
            swap_and_rebuild(con, st, days)
        st.close()
        on_file, on_lake = snapshot(file_con), snapshot(lake_con)
        assert all(on_file[name] for name in on_file), "every table has rows to compare"
        assert on_lake == on_file
    assert lake_con.execute("SELECT type FROM duckdb_databases() WHERE database_name = 'warehouse'").fetchone()[0] == "ducklake"
    file_con.close()
    lake_con.close()


def _run_writers(lake: LakeSettings, tmp_path, jobs: list[tuple[list[date], int]]) -> None:
    """Each job in its own process (own scratch directory), released at the same moment."""
    ctx = multiprocessing.get_context("spawn")  # no DuckDB state inherited through fork
    start, out = ctx.Barrier(len(jobs)), ctx.Queue()
    procs = []
    for k, (days, version) in enumerate(jobs):
        scratch = tmp_path / f"machine{k}"
        scratch.mkdir()
        procs.append(ctx.Process(target=write_days_in_process,
                                 args=(lake, [d.isoformat() for d in days], version, str(scratch), start, out)))
    for p in procs:
        p.start()
    outcomes = [out.get(timeout=240) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert [error for *_, error in outcomes] == [None] * len(jobs), outcomes


def test_two_processes_writing_different_days_at_once_both_commit(lake, tmp_path):
    _run_writers(lake, tmp_path, [([DAY1], 1), ([DAY2], 1)])
    with open_warehouse(lake=lake, read_only=True) as con:
        assert snapshot(con) == _file_reference(tmp_path, [([DAY1], 1), ([DAY2], 1)])


def test_two_writers_on_the_same_day_at_the_same_moment_both_end_correct(lake, tmp_path):
    # One fetched the day before its recordings were edited, one after: whichever commits
    # last, the edited versions (newer updatedAt) must win, in the raw and derived tables.
    _run_writers(lake, tmp_path, [([DAY1], 1), ([DAY1], 2)])
    with open_warehouse(lake=lake, read_only=True) as con:
        assert snapshot(con) == _file_reference(tmp_path, [([DAY1], 1), ([DAY1], 2)])


class _LosesFirstCommit:
    """A connection whose first COMMIT is beaten by `rival` committing first."""

    def __init__(self, con, rival) -> None:
        self._con, self._rival, self.commits, self.failures = con, rival, 0, []

    def execute(self, sql, *args):
        if sql.strip().upper() == "COMMIT":
            self.commits += 1
            if self.commits == 1:
                self._rival()
            try:
                return self._con.execute(sql, *args)
            except duckdb.Error as exc:
                self.failures.append(str(exc))
                raise
        return self._con.execute(sql, *args)


def test_a_swap_that_loses_its_commit_is_merged_again_onto_the_newer_rows(lake, tmp_path):
    con, rival_con = open_warehouse(lake=lake), open_warehouse(lake=lake)
    old = stage(tmp_path, day_records([DAY1], version=1), [DAY1])
    swap_partitions(con, old, [DAY1])
    new = stage(tmp_path, day_records([DAY1], version=2), [DAY1])
    racing = _LosesFirstCommit(con, lambda: swap_partitions(rival_con, new, [DAY1]))

    swap_partitions(racing, old, [DAY1])  # the stale stage commits second

    assert racing.commits == 2 and len(racing.failures) == 1
    assert "conflict" in racing.failures[0].lower()
    titles = con.execute("SELECT count(*), count(*) FILTER (title LIKE '%(edited)') FROM siro.recordings").fetchone()
    assert titles[0] == len(day_records([DAY1])) and titles[1] == titles[0]  # the newer rows were kept
    for c in (con, rival_con):
        c.close()


@pytest.mark.parametrize("lake", ["directory"], indirect=True)
def test_lake_mode_resource_needs_no_lock_file_and_reads_like_a_file(lake, tmp_path):
    resource = WarehouseResource(
        database=str(tmp_path / "local" / "siro.duckdb"), backend="ducklake",
        ducklake_catalog=lake.catalog, ducklake_data_path=lake.data_path,
    )
    with resource.get_connection() as con:
        st = stage(tmp_path, day_records([DAY1]), [DAY1])
        swap_partitions(con, st, [DAY1])
        st.close()
    with resource.read_connection() as con:
        assert con.execute("SELECT count(*) FROM siro.recordings").fetchone()[0] == len(day_records([DAY1]))
    # A file warehouse would have left siro.duckdb.writer.lock (and the file) there.
    local = tmp_path / "local"
    assert not local.exists() or not [p for p in local.rglob("*") if p.suffix in {".lock", ".duckdb", ".sqlite"}]
    assert lake.catalog not in repr(resource) and "password" not in repr(resource)


@pytest.mark.parametrize("lake", ["directory"], indirect=True)
def test_a_lake_that_cannot_be_opened_says_so_without_the_password(lake):
    wrong = LakeSettings(catalog=lake.catalog.replace("port=", "port=1"), data_path=lake.data_path)
    password = next(part.split("=", 1)[1] for part in lake.catalog.split() if part.startswith("password="))
    with pytest.raises(LakeConnectError) as caught:
        open_lake(wrong)
    assert password not in str(caught.value) and caught.value.__cause__ is None
    assert password not in repr(wrong)
