"""bench/freshness_push.py's arithmetic: which run wrote a change, and where its seconds went."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from freshness_push import Change, _attribute, _pct, report  # noqa: E402


def _run(created, dequeued, step, written, **tags):
    return {"id": f"r{created}", "tags": tags, "created": created, "dequeued": dequeued, "step": step, "written": written}


def test_a_change_is_the_latest_run_before_it_was_seen_and_its_stages_add_up():
    early = _run(90.0, 91.0, 93.0, 95.0)  # wrote before the change happened: not its writer
    writer = _run(104.0, 105.0, 107.0, 110.0)
    later = _run(120.0, 121.0, 123.0, 125.0)  # after the row was seen: not its writer either
    change = Change("msg_1", "rec_1", 0, at=100.0, seen=110.5)
    answered = [(108.0, "/v1/core/recordings/rec_1"), (108.5, "/v1/core/recordings/rec_1"), (111.0, "/late")]
    _attribute([change], [early, writer, later], answered, {"msg_1": 100.4}, webhooks=True)
    assert change.stages == pytest.approx(
        {"receive": 0.4, "tick": 3.6, "queue": 1.0, "start": 2.0, "fetch": 1.5, "write": 1.5})
    assert change.total == pytest.approx(writer["written"] - change.at)


def test_polling_has_no_receive_stage_and_an_unseen_change_is_not_timed():
    polled, unseen = Change("m", "rec_1", 0, at=100.0, seen=140.0), Change("n", "rec_2", 0, at=100.0)
    _attribute([polled, unseen], [_run(130.0, 131.0, 134.0, 139.0)], [], {}, webhooks=False)
    assert polled.stages["receive"] == 0 and polled.stages["tick"] == 30.0
    assert polled.stages["fetch"] == 0 and polled.stages["write"] == 5.0  # no answer seen: all write
    assert unseen.stages == {}
    # A changes-only run created before the change but listing after it brought it:
    # the stages before its step count nothing, and they still add up.
    late = Change("o", "rec_3", 0, at=132.5, seen=140.0)
    _attribute([late], [_run(130.0, 131.0, 134.0, 139.0)], [], {}, webhooks=False)
    assert late.stages == {"receive": 0, "tick": 0, "queue": 0, "start": 1.5, "fetch": 0, "write": 5.0}
    lines = report("polling", [polled, unseen], {"runs": 1, "api_requests": 3}, 60)
    assert "1/2 changes timed" in lines[0] and "p95 39.0 s" in lines[1] and "60 (the updatedAt sensor every 60 s)" in lines[3]


def test_a_materialization_logged_after_the_reader_saw_the_row_still_names_its_run():
    change = Change("m", "rec_1", 0, at=100.0, seen=110.0)
    _attribute([change], [_run(101.0, 102.0, 104.0, 111.5)], [(108.0, "/x")], {}, webhooks=False)
    assert change.stages["write"] == 2.0 and change.total == 10.0


def test_percentiles_are_inclusive():
    assert _pct([1.0, 2.0, 3.0, 4.0, 5.0], 50) == 3.0
    assert _pct([7.0], 95) == 7.0


def test_a_webhook_change_is_written_by_the_first_run_naming_its_id_even_if_seen_late():
    # The reader was held off the file while two runs wrote: it saw the row after both.
    writer = _run(104.0, 105.0, 107.0, 110.0, **{"siro/recording_ids": "rec_0,rec_1"})
    later = _run(112.0, 113.0, 115.0, 118.0, **{"siro/recording_ids": "rec_2"})
    change = Change("msg_1", "rec_1", 0, at=100.0, seen=119.0)
    _attribute([change], [writer, later], [(108.0, "/v1/core/recordings/rec_1")], {"msg_1": 100.4}, webhooks=True)
    assert change.total == pytest.approx(10.0) and change.stages["tick"] == pytest.approx(3.6)
