"""`bench/crm_delivery.py` at a toy size: one connection factory serves both runs, the
first delivers every field and the second finds every field unchanged."""

from __future__ import annotations

import sys


def test_the_crm_delivery_bench_runs_at_a_toy_size(monkeypatch, capsys):
    from bench import crm_delivery

    monkeypatch.setattr(sys, "argv", ["crm_delivery.py", "16"])
    crm_delivery.main()
    first, second = capsys.readouterr().out.strip().splitlines()
    assert "delivered 16, unchanged 0" in first
    assert "delivered 0, unchanged 16, API calls 0" in second
