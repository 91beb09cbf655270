"""The webhook cursor's retry list: backoff from an injected clock, bounded, given up after N attempts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from siro_assets.webhooks.retry import Pending, WebhookCursor, after_attempt

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def test_a_missing_id_backs_off_exponentially_then_is_given_up():
    cursor, given_up = after_attempt(WebhookCursor(), 5, ["rec_a"], [], T0, max_attempts=3)
    assert cursor.pending == (Pending("rec_a", 1, T0 + timedelta(seconds=30)),) and not given_up
    assert cursor.due(T0 + timedelta(seconds=29)) == () and cursor.due(T0 + timedelta(seconds=30)) == ("rec_a",)
    cursor, _ = after_attempt(cursor, 6, ["rec_a"], [], T0)
    assert cursor.pending[0].attempts == 2 and cursor.pending[0].next_try == T0 + timedelta(seconds=60)
    cursor, given_up = after_attempt(cursor, 6, ["rec_a"], [], T0, max_attempts=3)
    assert cursor.pending == () and given_up == ["rec_a"] and cursor.seq == 6


def test_a_fetched_id_leaves_the_list_and_untried_ones_keep_their_state():
    cursor = WebhookCursor(1, (Pending("a", 2, T0), Pending("b", 1, T0 + timedelta(hours=1))))
    cursor, _ = after_attempt(cursor, 1, [], ["a"], T0)
    assert cursor.pending == (Pending("b", 1, T0 + timedelta(hours=1)),)


def test_the_list_is_bounded_oldest_given_up_first():
    cursor, given_up = after_attempt(WebhookCursor(), 1, ["a", "b", "c"], [], T0, max_pending=2)
    assert [p.recording_id for p in cursor.pending] == ["b", "c"] and given_up == ["a"]


def test_the_cursor_round_trips_and_reads_the_bare_seq_format():
    assert WebhookCursor.parse("7") == WebhookCursor(7) and WebhookCursor.parse(None) == WebhookCursor()
    cursor = WebhookCursor(9, (Pending("rec_a", 2, T0),))
    assert WebhookCursor.parse(cursor.serialize()) == cursor
    assert WebhookCursor(3).serialize() == "3"
