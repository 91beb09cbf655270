"""Two instances on one lake, schemas `siro` and `west`: each writes its own tables, and
each table has its own write-guard row."""

from __future__ import annotations

from datetime import date

from siro_assets.warehouse.backend import GUARD_TABLE, open_warehouse
from siro_assets.warehouse.lake import LakeSettings
from tests.lake.support import TABLES, day_records, stage, swap_and_rebuild

DAY1, DAY2 = date(2026, 3, 2), date(2026, 3, 3)


def _tables(con) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for schema, table in con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database()"
    ).fetchall():
        found.setdefault(schema, set()).add(table)
    return found


def test_two_schemas_on_one_lake_keep_their_own_tables_and_guard_rows(catalog_dsn, tmp_path):
    lake = LakeSettings(catalog=catalog_dsn, data_path=str(tmp_path / "lake_data"), scratch_directory=str(tmp_path))
    with open_warehouse(lake=lake, schema="west") as con:
        st = stage(tmp_path, day_records([DAY1]), [DAY1])
        try:
            swap_and_rebuild(con, st, [DAY1])
        finally:
            st.close()
        assert "siro" not in _tables(con)
    with open_warehouse(lake=lake) as con:
        st = stage(tmp_path, day_records([DAY2]), [DAY2])
        try:
            swap_and_rebuild(con, st, [DAY2])
        finally:
            st.close()
    with open_warehouse(lake=lake, read_only=True, schema="west") as con:
        tables = _tables(con)
        assert set(TABLES) <= tables["west"] and set(TABLES) <= tables["siro"]
        west_days = con.execute("SELECT DISTINCT partition_date FROM recordings").fetchall()
        siro_days = con.execute("SELECT DISTINCT partition_date FROM siro.recordings").fetchall()
        guards = {row[0] for row in con.execute(f"SELECT table_name FROM {GUARD_TABLE}").fetchall()}
    assert west_days == [(DAY1,)] and siro_days == [(DAY2,)]
    assert {f"{schema}.{name}" for schema in ("siro", "west") for name in TABLES} == guards
