"""Replay: stored events or given ids re-queued as new inbox entries, past the sensor's cursor."""

from __future__ import annotations

from datetime import timedelta

import pytest

from siro_assets.webhooks.__main__ import main
from siro_assets.webhooks.drain import drain
from siro_assets.webhooks.inbox import InboxEvent, SqliteInbox
from siro_assets.webhooks.replay import REPLAY_EVENT_TYPE, replay
from tests.inbox_support import T0, clock, inbox_event  # noqa: F401 - fixture

def _event(msg_id: str, rid: str, endpoint: str = "siro") -> InboxEvent:
    return inbox_event(msg_id, rid, endpoint=endpoint, kind="recordingLinked", n=msg_id)


@pytest.fixture
def inbox(tmp_path, clock):
    box = SqliteInbox(tmp_path / "w.webhooks.sqlite", now=clock)
    box.append(_event("msg_1", "rec_1"))
    clock.t = T0 + timedelta(hours=1)
    box.append(_event("msg_2", "rec_2"))
    box.append(_event("msg_w", "rec_w", endpoint="west"))
    clock.t = T0 + timedelta(hours=2)
    box.append(_event("msg_3", "rec_1"))
    clock.t = T0 + timedelta(hours=3)
    yield box
    box.close()


def test_events_since_a_time_are_requeued_once_per_recording_past_the_cursor(inbox):
    cursor = 4  # the sensor drained every original event
    done = replay(inbox, "siro", since=T0 + timedelta(minutes=30), batch="b1")
    assert done.recording_ids == ("rec_2", "rec_1") and not done.full
    assert min(done.seqs) > cursor
    drained = drain(inbox, cursor, 100, endpoint="siro")
    assert drained.ids == ("rec_2", "rec_1")
    queued = inbox.read_after(cursor, 10)
    # The latest event of each recording, its payload as stored, under a new message id.
    assert [(e.message_id, e.payload["n"]) for e in queued] == [("replay_b1_msg_2", "msg_2"), ("replay_b1_msg_3", "msg_3")]
    # A second replay is a second re-queue, not a duplicate.
    assert len(replay(inbox, "siro", since=T0, batch="b2").seqs) == 2


def test_given_ids_are_queued_even_if_never_notified(inbox):
    done = replay(inbox, "siro", ids=["rec_9", " rec_2 ", "rec_9", ""], batch="b1")
    assert done.recording_ids == ("rec_9", "rec_2")
    events = inbox.read_after(4, 10)
    assert {e.event_type for e in events} == {REPLAY_EVENT_TYPE} and {e.endpoint for e in events} == {"siro"}


def test_a_full_inbox_stops_the_replay_and_says_so(tmp_path, clock):
    with SqliteInbox(tmp_path / "full.sqlite", capacity=2, now=clock) as box:
        done = replay(box, "siro", ids=["a", "b", "c"])
        assert done.recording_ids == ("a", "b") and done.full


def test_the_cli_replays_into_the_endpoints_inbox(inbox, tmp_path, capsys):
    path = str(tmp_path / "w.webhooks.sqlite")
    assert main(["replay", "--endpoint", "siro", "--inbox", path, "--since", "2026-03-01T12:30:00Z"]) == 0
    assert "re-queued 2 recording(s) on /webhooks/siro" in capsys.readouterr().out
    assert main(["replay", "--endpoint", "west", "--inbox", path, "--ids", "rec_x,rec_y"]) == 0
    assert drain(inbox, 6, 10, endpoint="west").ids == ("rec_x", "rec_y")


def test_the_cli_refuses_an_endpoint_the_project_does_not_have(capsys):
    assert main(["replay", "--endpoint", "nowhere", "--ids", "rec_1"]) == 2
    assert "no SiroComponent instance has key_prefix 'nowhere'" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--endpoint", "siro"], ["--endpoint", "siro", "--since", "x"],
                                  ["--endpoint", "siro", "--since", "2026-03-01", "--ids", "a"]])
def test_the_cli_needs_exactly_one_valid_selection(argv):
    with pytest.raises(SystemExit):
        main(["replay", *argv])
