"""SharedRequestPacer: one budget per token in a file, shared by every pacer (process) using it."""

from __future__ import annotations

import pytest

from siro_assets.api_client.pacing import SharedRequestPacer, budget_key


class FrozenClock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def shared(path, key: str, clock, rpm: float = 600, burst: int = 1) -> SharedRequestPacer:
    return SharedRequestPacer(path, key, rpm, burst=burst, clock=clock, sleep=lambda s: None)


def test_pacers_on_one_file_hand_out_one_schedule(tmp_path):
    clock = FrozenClock()
    path = tmp_path / "budget.sqlite"
    # Two pacers on one file stand for two processes: neither knows the other's state.
    a, b = shared(path, "k", clock), shared(path, "k", clock)
    delays = [pacer.reserve() for _ in range(10) for pacer in (a, b)]
    assert delays == pytest.approx([i * 0.1 for i in range(20)])


def test_burst_then_steady_rate_and_idle_refill(tmp_path):
    clock = FrozenClock()
    pacer = shared(tmp_path / "b.sqlite", "k", clock, rpm=60, burst=3)
    assert [pacer.reserve() for _ in range(4)] == pytest.approx([0, 0, 0, 1.0])
    clock.now += 1_000
    assert [pacer.reserve() for _ in range(4)] == pytest.approx([0, 0, 0, 1.0])


def test_each_token_has_its_own_budget(tmp_path):
    clock = FrozenClock()
    path = tmp_path / "budget.sqlite"
    one, other = shared(path, budget_key("token-one"), clock), shared(path, budget_key("token-two"), clock)
    assert [one.reserve() for _ in range(3)] == pytest.approx([0, 0.1, 0.2])
    assert other.reserve() == 0


def test_the_file_never_holds_the_token(tmp_path):
    token = "pacing-test-secret-token-value"
    path = tmp_path / "budget.sqlite"
    pacer = shared(path, budget_key(token), FrozenClock())
    pacer.reserve()
    pacer.close()
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert token.encode() not in data
    assert budget_key(token) != budget_key(token + "x") and token not in budget_key(token)


def test_a_schedule_implausibly_far_ahead_is_reset(tmp_path):
    clock = FrozenClock(now=10_000.0)
    path = tmp_path / "budget.sqlite"
    shared(path, "k", clock).reserve()
    clock.now = 10.0  # the wall clock stepped back by hours
    assert shared(path, "k", clock).reserve() == 0


def test_a_shared_pacer_survives_close_and_reopens(tmp_path):
    clock = FrozenClock()
    pacer = shared(tmp_path / "sub" / "budget.sqlite", "k", clock)
    assert pacer.reserve() == 0
    pacer.close()
    assert pacer.reserve() == pytest.approx(0.1)
