"""Which queued run a day is left to: the one reaching back furthest, never one that
fetches only the recordings it names (a webhook-driven run)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from siro_assets.changes.pending_runs import QueuedRun, covers, furthest_queued

T = datetime(2026, 3, 2, 12, tzinfo=UTC)
D1, D2 = date(2026, 3, 1), date(2026, 3, 2)
WEBHOOK = QueuedRun("run:wh", None, ids_only=True)


def test_a_run_fetching_only_named_ids_covers_no_day():
    assert furthest_queued([(WEBHOOK, [D1, D2])]) == {}


def test_an_ids_only_run_does_not_mask_a_changes_run_of_the_same_day():
    changes = QueuedRun("poll", T - timedelta(minutes=5))
    for runs in ([(WEBHOOK, [D1]), (changes, [D1])], [(changes, [D1]), (WEBHOOK, [D1])]):
        chosen = furthest_queued(runs)
        assert chosen == {D1: changes}
        # Relied on only for what it lists: a change older than its since is not covered.
        assert covers(chosen[D1].since, T - timedelta(minutes=5))
        assert not covers(chosen[D1].since, T - timedelta(minutes=6))


def test_the_run_reaching_back_furthest_is_chosen_per_day():
    late, early, whole = QueuedRun("late", T), QueuedRun("early", T - timedelta(hours=1)), QueuedRun("whole", None)
    assert furthest_queued([(late, [D1, D2]), (early, [D2])]) == {D1: late, D2: early}
    assert furthest_queued([(early, [D1]), (whole, [D1]), (late, [D1])]) == {D1: whole}
