"""A batch of pages staged in one statement is the same as staging them one by one."""

from __future__ import annotations

import json
from datetime import date

from siro_assets.warehouse.staging import RecordingsStage

from tests.raw_payloads import recording

DAY = date(2026, 1, 5)


def _page(*records) -> bytes:
    return json.dumps({"data": list(records), "cursor": None}).encode()


def _stage(add) -> list[tuple]:
    with RecordingsStage() as stage:
        add(stage)
        summary = stage.finalize([DAY])
        rows = stage._con.execute("SELECT id, title FROM recordings ORDER BY id").fetchall()
    return [summary.rows, summary.duplicates_dropped, rows]


def test_batched_pages_keep_arrival_order_for_duplicates():
    pages = [
        _page(recording("a", DAY, title="first"), recording("b", DAY)),
        _page(recording("a", DAY, title="second")),  # same updatedAt: the later arrival wins
        _page(recording("c", DAY)),
    ]

    def one_by_one(stage):
        for page in pages:
            stage.add_page(page)

    def batched(stage):
        stage.add_pages(pages[:2])
        stage.add_pages(pages[2:])

    expected = [3, 1, [("a", "second"), ("b", "Visit b"), ("c", "Visit c")]]
    assert _stage(one_by_one) == expected
    assert _stage(batched) == expected


def test_a_batch_too_big_for_the_stage_memory_is_staged_in_halves(monkeypatch):
    # Sixteen small pages rather than four large ones: DuckDB 1.5.5's JSON parse needs about
    # twice 2.0's memory, and a single 400-recording page no longer fits a 40 MB stage.
    big = [_page(*(recording(f"r{p}_{i}", DAY, title="x" * 2000) for i in range(100))) for p in range(16)]
    batch_sizes: list[int] = []
    add_pages = RecordingsStage.add_pages

    def counted(self, bodies):
        batch_sizes.append(len(bodies))
        return add_pages(self, bodies)

    monkeypatch.setattr(RecordingsStage, "add_pages", counted)
    with RecordingsStage(memory_limit="40MB") as stage:
        stage.add_pages(big)
        summary = stage.finalize([DAY])
    assert summary.rows == 1600 and summary.duplicates_dropped == 0
    assert batch_sizes[:2] == [16, 8], "the whole batch should not have fit, and been split in halves"
