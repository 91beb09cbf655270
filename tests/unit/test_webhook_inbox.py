"""The durable webhook inbox, deduplicated and bounded: the same interface tests on both
stores (SQLite in WAL mode beside the warehouse, and a PostgreSQL table), then each store's own."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from siro_assets.webhooks.inbox import (
    Appended,
    InboxFull,
    SqliteInbox,
    inbox_path_for,
)
from siro_assets.webhooks.location import InboxLocation
from siro_assets.webhooks.pg_inbox import PostgresInbox
from tests.inbox_support import T0, clock, inbox_event  # noqa: F401 - fixture
from tests.webhook_pg import webhook_pg_dsn  # noqa: F401 - fixture


event = inbox_event


@pytest.fixture(params=["sqlite", "postgres"])
def open_inbox(request, tmp_path):
    """Opens another connection to one store (a second process, a reopened inbox)."""
    opened = []

    def open_(**options):
        if request.param == "sqlite":
            box = SqliteInbox(tmp_path / "w.webhooks.sqlite", **options)
        else:
            box = PostgresInbox(request.getfixturevalue("webhook_pg_dsn"), **options)
        opened.append(box)
        return box

    yield open_
    for box in opened:
        box.close()


@pytest.fixture
def inbox(open_inbox, clock):
    return open_inbox(capacity=5, retention=timedelta(days=3), now=clock)


def test_the_inbox_sits_beside_the_warehouse_named_after_its_stem():
    assert inbox_path_for(Path("data/siro.duckdb")) == Path("data/siro.webhooks.sqlite").resolve()
    assert inbox_path_for("/x/y/my warehouse.duckdb") == Path("/x/y/my warehouse.webhooks.sqlite")


def test_the_file_is_sqlite_in_wal_mode(tmp_path):
    SqliteInbox(tmp_path / "w.webhooks.sqlite").close()
    con = sqlite3.connect(tmp_path / "w.webhooks.sqlite")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()


def test_a_new_message_is_stored_and_a_replayed_id_is_not(inbox):
    first = inbox.append(event("msg_a"))
    again = inbox.append(event("msg_a", recording_id="rec_other"))
    assert first == Appended(seq=first.seq, duplicate=False)
    assert again == Appended(seq=first.seq, duplicate=True)
    assert [(e.message_id, e.recording_id) for e in inbox.read_after(0, 100)] == [("msg_a", "rec_1")]


def test_the_same_id_at_another_endpoint_is_another_message(inbox):
    # Svix gives a message fanned out to several endpoints one id.
    inbox.append(event("msg_a", endpoint="siro"))
    assert not inbox.append(event("msg_a", endpoint="west")).duplicate
    assert [e.endpoint for e in inbox.read_after(0, 10, endpoint="west")] == ["west"]


def test_seq_increases_and_read_after_drains_past_a_cursor(inbox):
    seqs = [inbox.append(event(f"msg_{n}", recording_id=f"rec_{n}")).seq for n in range(4)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 4
    page = inbox.read_after(0, 2)
    assert [e.recording_id for e in page] == ["rec_0", "rec_1"]
    rest = inbox.read_after(page[-1].seq, 10)
    assert [e.recording_id for e in rest] == ["rec_2", "rec_3"]
    assert inbox.read_after(rest[-1].seq, 10) == []
    assert rest[0].payload == {"recordingId": "rec_2", "eventType": "integrations.recordingProcessed"}
    assert rest[0].received_at == T0


def test_a_full_inbox_refuses_new_messages_but_still_knows_its_duplicates(inbox):
    for n in range(5):
        inbox.append(event(f"msg_{n}"))
    with pytest.raises(InboxFull):
        inbox.append(event("msg_new"))
    assert inbox.append(event("msg_2")).duplicate
    assert inbox.count() == 5


def test_history_older_than_the_retention_is_dropped_and_seq_never_goes_back(inbox, clock):
    for n in range(5):
        inbox.append(event(f"msg_{n}"))
    last = inbox.read_after(0, 10)[-1].seq
    clock.t = T0 + timedelta(days=3, seconds=1)
    stored = inbox.append(event("msg_later"))
    assert not stored.duplicate and stored.seq > last
    assert [e.message_id for e in inbox.read_after(0, 10)] == ["msg_later"]


def test_another_connection_sees_what_append_returned_for(inbox, open_inbox, clock):
    # What the receiver acknowledged is committed: a second process's reader sees it.
    inbox.append(event("msg_a"))
    reader = open_inbox(now=clock)
    assert [e.message_id for e in reader.read_after(0, 10)] == ["msg_a"]


def test_a_reopened_inbox_keeps_its_dedupe_keys_and_sequence(open_inbox, clock):
    box = open_inbox(now=clock)
    seq = box.append(event("msg_a")).seq
    box.close()
    box = open_inbox(now=clock)
    assert box.append(event("msg_a")).duplicate
    assert box.append(event("msg_b")).seq > seq


def test_two_writers_share_one_bound_and_one_dedupe(open_inbox, clock):
    # Two receiver replicas on one store: one capacity, each id once, across both.
    first, second = open_inbox(capacity=3, now=clock), open_inbox(capacity=3, now=clock)
    assert not first.append(event("msg_a")).duplicate
    assert second.append(event("msg_a")).duplicate
    second.append(event("msg_b"))
    first.append(event("msg_c"))
    with pytest.raises(InboxFull):
        second.append(event("msg_d"))
    assert [e.message_id for e in first.read_after(0, 10)] == ["msg_a", "msg_b", "msg_c"]


def test_concurrent_appends_commit_in_seq_order_so_a_drain_never_skips_one(open_inbox, clock):
    # Seqs must be visible in increasing order: a reader that saw seq n never later
    # finds a new event below n (a PostgreSQL sequence alone would allow that).
    import threading

    writers = [open_inbox(now=clock) for _ in range(4)]
    reader = open_inbox(now=clock)
    stop, skipped, cursor = threading.Event(), [], 0
    seen: set[int] = set()

    def write(box, w):
        for n in range(40):
            box.append(event(f"msg_{w}_{n}", recording_id=f"rec_{w}_{n}"))

    threads = [threading.Thread(target=write, args=(box, w)) for w, box in enumerate(writers)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads) or not stop.is_set():
        if not any(t.is_alive() for t in threads):
            stop.set()
        for e in reader.read_after(cursor, 1000):
            seen.add(e.seq)
            cursor = e.seq
        skipped += [e.seq for e in reader.read_after(0, 1000) if e.seq <= cursor and e.seq not in seen]
    assert not skipped and len(seen) == 160


def test_the_location_opens_the_store_the_instance_names(tmp_path, webhook_pg_dsn):
    sqlite = InboxLocation.for_instance(inbox_path=None, inbox_dsn_env=None, warehouse_path=tmp_path / "o.duckdb")
    assert sqlite.sqlite_path == tmp_path / "o.webhooks.sqlite" and not sqlite.exists()
    with sqlite.open() as box:
        assert isinstance(box, SqliteInbox) and sqlite.exists()
    pg = InboxLocation.for_instance(inbox_path="ignored", inbox_dsn_env="INBOX_DSN", warehouse_path="w.duckdb")
    password = webhook_pg_dsn.split("password=")[1].split()[0]
    assert "INBOX_DSN" in pg.describe() and password not in pg.describe()
    with pg.open(environ={"INBOX_DSN": webhook_pg_dsn}) as box:
        assert isinstance(box, PostgresInbox) and box.count() == 0 and password not in repr(box)
    with pytest.raises(RuntimeError, match="set INBOX_DSN") as caught:
        pg.open(environ={})
    assert not pg.exists(environ={})


def test_a_postgres_inbox_reconnects_after_the_server_dropped_its_connection(webhook_pg_dsn, clock):
    import psycopg2

    box = PostgresInbox(webhook_pg_dsn, now=clock)
    try:
        box.append(event("msg_a"))
        with psycopg2.connect(webhook_pg_dsn) as admin, admin.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE application_name = 'siro-webhooks' AND pid <> pg_backend_pid()")
        with pytest.raises(psycopg2.Error):
            box.append(event("msg_b"))  # the request in flight fails (no 2xx, the sender retries)
        assert not box.append(event("msg_b")).duplicate  # the next one reconnects
        assert box.count() == 2 and "password" not in repr(box)
    finally:
        box.close()


def test_a_postgres_inbox_commits_synchronously_even_where_the_database_does_not(webhook_pg_dsn, clock):
    # A 2xx follows the commit: with `synchronous_commit = off` (a common tuning) a crash
    # right after it could lose an acknowledged event.
    import psycopg2

    dbname = webhook_pg_dsn.split("dbname=")[1].split()[0]
    with psycopg2.connect(webhook_pg_dsn) as admin, admin.cursor() as cur:
        cur.execute(f"ALTER DATABASE {dbname} SET synchronous_commit = off")
    box = PostgresInbox(webhook_pg_dsn, now=clock)
    try:
        box.append(event("msg_a"))
        with box._connection().cursor() as cur:
            cur.execute("SHOW synchronous_commit")
            assert cur.fetchone() == ("on",)
    finally:
        box.close()


def test_both_stores_run_one_store_logic_and_differ_only_in_their_dialect():
    # The SQLite file and the PostgreSQL table must not drift apart: the dedupe, trim,
    # capacity and read code is one (`SqlInbox`); each store gives only its dialect.
    from siro_assets.webhooks.inbox import SqlInbox

    for method in ("append", "read_after", "count", "mark_consumed"):
        assert getattr(SqliteInbox, method) is getattr(PostgresInbox, method) is getattr(SqlInbox, method)


def test_a_full_inbox_drops_the_oldest_drained_events_first_and_never_undrained_ones(inbox):
    for n in range(5):
        inbox.append(event(f"msg_{n}"))
    seqs = [e.seq for e in inbox.read_after(0, 10)]
    inbox.mark_consumed("siro", seqs[1])  # the sensor drained the first two
    inbox.mark_consumed("siro", seqs[0])  # a stale mark never lowers it
    assert not inbox.append(event("msg_new")).duplicate
    assert inbox.append(event("msg_newer")).seq > seqs[-1]
    assert [e.message_id for e in inbox.read_after(0, 10)] == ["msg_2", "msg_3", "msg_4", "msg_new", "msg_newer"]
    # Nothing drained is left: the bound holds again, and nothing undrained was dropped.
    with pytest.raises(InboxFull):
        inbox.append(event("msg_one_too_many"))
    assert inbox.count() == 5


def test_an_endpoints_mark_frees_only_its_own_events(inbox):
    for n in range(5):
        inbox.append(event(f"msg_{n}", endpoint="west" if n < 2 else "siro"))
    inbox.mark_consumed("siro", inbox.read_after(0, 10)[-1].seq)  # siro drained all of its own
    inbox.append(event("msg_new", endpoint="west"))
    assert [e.message_id for e in inbox.read_after(0, 10, endpoint="west")] == ["msg_0", "msg_1", "msg_new"]
