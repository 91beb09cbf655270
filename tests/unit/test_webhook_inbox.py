"""The durable webhook inbox: SQLite in WAL mode beside the warehouse, deduplicated and bounded."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from siro_assets.webhooks.inbox import (
    Appended,
    InboxEvent,
    InboxFull,
    SqliteInbox,
    inbox_path_for,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self, t: datetime) -> None:
        self.t = t

    def __call__(self) -> datetime:
        return self.t


def event(msg_id: str, recording_id: str = "rec_1", endpoint: str = "siro", kind: str = "recordingProcessed"):
    return InboxEvent(
        endpoint=endpoint,
        message_id=msg_id,
        event_type=f"integrations.{kind}",
        recording_id=recording_id,
        payload={"recordingId": recording_id, "eventType": f"integrations.{kind}"},
    )


@pytest.fixture
def clock():
    return Clock(T0)


@pytest.fixture
def inbox(tmp_path, clock):
    box = SqliteInbox(tmp_path / "w.webhooks.sqlite", capacity=5, retention=timedelta(days=3), now=clock)
    yield box
    box.close()


def test_the_inbox_sits_beside_the_warehouse_named_after_its_stem():
    assert inbox_path_for(Path("data/siro.duckdb")) == Path("data/siro.webhooks.sqlite").resolve()
    assert inbox_path_for("/x/y/my warehouse.duckdb") == Path("/x/y/my warehouse.webhooks.sqlite")


def test_the_file_is_sqlite_in_wal_mode(inbox, tmp_path):
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


def test_another_connection_sees_what_append_returned_for(inbox, tmp_path, clock):
    # What the receiver acknowledged is committed: a second process's reader sees it.
    inbox.append(event("msg_a"))
    reader = SqliteInbox(tmp_path / "w.webhooks.sqlite", now=clock)
    try:
        assert [e.message_id for e in reader.read_after(0, 10)] == ["msg_a"]
    finally:
        reader.close()


def test_a_reopened_inbox_keeps_its_dedupe_keys_and_sequence(tmp_path, clock):
    path = tmp_path / "w.webhooks.sqlite"
    box = SqliteInbox(path, now=clock)
    seq = box.append(event("msg_a")).seq
    box.close()
    box = SqliteInbox(path, now=clock)
    try:
        assert box.append(event("msg_a")).duplicate
        assert box.append(event("msg_b")).seq > seq
    finally:
        box.close()
