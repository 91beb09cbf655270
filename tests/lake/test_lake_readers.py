"""Consumers read a lake: the pandas input manager (partition-aligned, read-only) and the
documented `duckdb_connection`, while a writer holds a transaction and commits."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg
import duckdb
import pandas as pd
import pytest

from siro_assets.pipeline.pandas_reader import SiroWarehouseReader
from siro_assets.warehouse.backend import open_warehouse
from siro_assets.warehouse.connection import duckdb_connection
from siro_assets.warehouse.lake import LakeSettings

from .support import day_records, stage, swap_and_rebuild

DAYS = [date(2026, 3, 2), date(2026, 3, 3)]
RECORDINGS = dg.AssetKey(["siro", "recordings"])
daily = dg.DailyPartitionsDefinition(start_date="2026-03-01", timezone="UTC")


def _load(lake: LakeSettings, tmp_path, days: list[date], version: int = 1) -> None:
    con = open_warehouse(lake=lake)
    st = stage(tmp_path, day_records(days, version=version), days)
    swap_and_rebuild(con, st, days)
    st.close()
    con.close()


def _reader(lake: LakeSettings, tmp_path) -> SiroWarehouseReader:
    return SiroWarehouseReader(database=str(tmp_path / "unused.duckdb"), backend="ducklake",
                               ducklake_catalog=lake.catalog, ducklake_data_path=lake.data_path)


def _read_day(reader: SiroWarehouseReader, day: date) -> pd.DataFrame:
    """What a daily consumer asset receives for `day` through the reader."""
    received = {}

    @dg.asset(partitions_def=daily, ins={"recordings": dg.AssetIn(RECORDINGS, input_manager_key="reader")})
    def consumer(recordings: pd.DataFrame) -> None:
        received["frame"] = recordings

    upstream = dg.AssetSpec(RECORDINGS, partitions_def=daily, metadata={"partition_expr": "partition_date"})
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([upstream, consumer], selection=[consumer], partition_key=day.isoformat(),
                                resources={"reader": reader}, instance=instance)
    assert result.success
    return received["frame"]


def _set_aws_env(lake: LakeSettings, monkeypatch) -> None:
    # The reader, like the warehouse resource, takes object-store credentials from AWS_*.
    for name, value in (("AWS_ACCESS_KEY_ID", lake.aws_access_key_id),
                        ("AWS_SECRET_ACCESS_KEY", lake.aws_secret_access_key),
                        ("AWS_REGION", lake.aws_region), ("AWS_ENDPOINT_URL", lake.aws_endpoint_url)):
        if value:
            monkeypatch.setenv(name, value)


@pytest.fixture
def loaded_lake(lake, tmp_path, monkeypatch) -> LakeSettings:
    """DAYS on a lake in a directory and one on moto's S3."""
    _load(lake, tmp_path, DAYS)
    _set_aws_env(lake, monkeypatch)
    return lake


@pytest.fixture
def directory_lake(catalog_dsn, tmp_path) -> LakeSettings:
    """DAYS on a lake in a directory."""
    lake = LakeSettings(catalog=catalog_dsn, data_path=str(tmp_path / "lake_data"), scratch_directory=str(tmp_path))
    _load(lake, tmp_path, DAYS)
    return lake


def test_the_pandas_reader_loads_exactly_its_partitions_rows_from_a_lake(loaded_lake, tmp_path):
    frame = _read_day(_reader(loaded_lake, tmp_path), DAYS[1])
    with open_warehouse(lake=loaded_lake, read_only=True) as con:
        expected = con.execute("SELECT count(*) FROM siro.recordings WHERE partition_date = ?", [DAYS[1]]).fetchone()[0]
        total = con.execute("SELECT count(*) FROM siro.recordings").fetchone()[0]
    assert total > expected > 0
    assert len(frame) == expected
    assert set(pd.to_datetime(frame["partition_date"]).dt.date) == {DAYS[1]}
    assert _read_day(_reader(loaded_lake, tmp_path), DAYS[-1] + timedelta(days=1)).empty  # a day with no rows


def test_a_reader_never_blocks_a_writer_nor_sees_its_uncommitted_rows(directory_lake, tmp_path):
    lake = directory_lake
    reader = _reader(lake, tmp_path)
    old_titles = set(_read_day(reader, DAYS[0])["title"])

    writer = open_warehouse(lake=lake)
    writer.execute("BEGIN")
    writer.execute("UPDATE siro.recordings SET title = title || ' (edited)' WHERE partition_date = ?", [DAYS[0]])
    # A consumer asset loads, and a SQL consumer opens a transaction, while the writer's is open.
    assert set(_read_day(reader, DAYS[0])["title"]) == old_titles
    with duckdb_connection(lake=lake, read_only=True) as sql_reader:
        sql_reader.execute("BEGIN")
        before = sql_reader.execute("SELECT count(*) FILTER (WHERE title LIKE '%(edited)') FROM siro.recordings").fetchone()
        writer.execute("COMMIT")  # with a reader mid-transaction: no lock to wait for
        assert sql_reader.execute(
            "SELECT count(*) FILTER (WHERE title LIKE '%(edited)') FROM siro.recordings"
        ).fetchone() == before == (0,)  # its snapshot stays consistent
        sql_reader.execute("COMMIT")
    writer.close()
    assert all(t.endswith("(edited)") for t in _read_day(reader, DAYS[0])["title"])


def test_duckdb_connection_reads_the_lake_the_documented_variables_name(directory_lake, monkeypatch):
    loaded_lake = directory_lake
    monkeypatch.setenv("SIRO_WAREHOUSE", "ducklake")
    monkeypatch.setenv("SIRO_DUCKLAKE_CATALOG", loaded_lake.catalog)
    monkeypatch.setenv("SIRO_DUCKLAKE_DATA_PATH", loaded_lake.data_path)
    with duckdb_connection(read_only=True) as con:
        days = con.execute("SELECT DISTINCT partition_date FROM siro.recordings ORDER BY 1").fetchall()
        assert [d for (d,) in days] == DAYS
        with pytest.raises(duckdb.Error, match="read-only|read only"):
            con.execute("DELETE FROM siro.recordings")


def test_the_reader_refuses_to_store_and_to_open_read_write(catalog_dsn, tmp_path):
    lake = LakeSettings(catalog=catalog_dsn, data_path=str(tmp_path / "lake_data"))

    @dg.asset(key=["siro", "not_allowed"], io_manager_key="reader")
    def not_allowed() -> pd.DataFrame:
        return pd.DataFrame({"a": [1]})

    with pytest.raises(TypeError, match="only reads the siro warehouse"):
        dg.materialize([not_allowed], resources={"reader": _reader(lake, tmp_path)})
    writable = SiroWarehouseReader(database="unused", backend="ducklake", ducklake_catalog=lake.catalog,
                                   ducklake_data_path=lake.data_path, connection_config={"access_mode": "READ_WRITE"})
    with pytest.raises(dg.DagsterResourceFunctionError) as refused:
        dg.materialize([not_allowed], resources={"reader": writable})
    assert "READ_ONLY" in str(refused.value.__cause__)
    assert lake.catalog not in repr(_reader(lake, tmp_path))
