"""The known concurrency bugs of DuckLake's PostgreSQL catalog, as our writers meet them
(docs/ARCHITECTURE.md, "DuckLake: upstream concurrency bugs"): ids taken as max(id) + 1,
so concurrent commits collide on `ducklake_snapshot_pkey` (duckdb/ducklake#1094, #158)
until DuckLake's own ten retries run out (#1283). Many writers, each its own DuckDB and
catalog connection, released at once, commit to one guarded table and to tables of
their own: every commit lands exactly once, and the table statistics agree with a scan.
Fails if a collision escapes our retry, or if a commit is lost or doubled."""

from __future__ import annotations

import logging
import threading

import pytest

from siro_assets.warehouse.backend import create_keyed_table, create_schema, open_warehouse, upsert, write_transaction
from siro_assets.warehouse.tables import transaction

WRITERS, COMMITS = 4, 6


@pytest.mark.parametrize("lake", ["directory"], indirect=True)
def test_commits_racing_for_catalog_ids_all_land_exactly_once(lake, caplog):
    setup = open_warehouse(lake=lake)
    create_schema(setup, "siro")
    create_keyed_table(setup, "CREATE TABLE IF NOT EXISTS siro.race (writer INTEGER, n INTEGER, PRIMARY KEY (writer, n))")
    for k in range(WRITERS):
        setup.execute(f"CREATE TABLE siro.own_{k} (n INTEGER)")
    start, errors = threading.Barrier(WRITERS), []

    def writer(k: int) -> None:
        try:
            con = open_warehouse(lake=lake)  # its own DuckDB, its own catalog connections
            start.wait(timeout=120)
            for n in range(COMMITS):
                def shared(n=n) -> None:
                    with transaction(con):
                        upsert(con, "siro.race", columns=("writer", "n"), source="SELECT $w, $n",
                               key=("writer", "n"), params={"w": k, "n": n})
                write_transaction(shared)  # one table: the write guard makes these take turns

                def own(n=n) -> None:
                    with transaction(con):
                        con.execute(f"INSERT INTO siro.own_{k} VALUES (?)", [n])
                write_transaction(own)  # other tables: only the snapshot id is contended
            con.close()
        except BaseException as exc:  # reported by the test
            errors.append(f"writer {k}: {type(exc).__name__}: {exc}")

    with caplog.at_level(logging.INFO, logger="siro_assets.warehouse"):
        threads = [threading.Thread(target=writer, args=(k,)) for k in range(WRITERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=600)
    assert errors == []
    race = setup.execute("SELECT count(*), count(DISTINCT (writer, n)) FROM siro.race").fetchall()
    assert race == [(WRITERS * COMMITS, WRITERS * COMMITS)]
    for k in range(WRITERS):
        rows = setup.execute(f"SELECT count(*), count(DISTINCT n), min(n), max(n) FROM siro.own_{k}").fetchall()
        assert rows == [(COMMITS, COMMITS, 0, COMMITS - 1)]
    # Every commit is one snapshot of its own (none overwrote another's).
    snapshots = setup.execute("SELECT count(*) FROM ducklake_snapshots('warehouse')").fetchall()[0][0]
    assert snapshots >= 2 * WRITERS * COMMITS
    retried = [r.getMessage() for r in caplog.records if "Retrying" in r.getMessage()]
    collisions = [m for m in retried if "duplicate key" in m.lower()]
    print(f"{len(retried)} transaction(s) re-run after a lost commit race, {len(collisions)} of them "
          "after DuckLake's own retries hit a duplicate catalog id")
    setup.close()
