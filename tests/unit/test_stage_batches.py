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


def test_a_batch_too_big_for_the_stage_memory_is_staged_in_halves():
    # Sized for DuckDB 1.5.5's JSON parser (measured: 60-100MB halve, ~130MB takes the four
    # pages at once, 40MB cannot parse even one page); the batch sizes prove the halving.
    big = [_page(*(recording(f"r{p}_{i}", DAY, title="x" * 2000) for i in range(400))) for p in range(4)]
    batch_sizes = []
    with RecordingsStage(memory_limit="80MB") as stage:
        add_pages = stage.add_pages

        def counted(bodies):
            batch_sizes.append(len(bodies))
            return add_pages(bodies)

        stage.add_pages = counted  # the halves recurse through the instance's attribute
        stage.add_pages(big)
        summary = stage.finalize([DAY])
    assert batch_sizes[:2] == [4, 2], batch_sizes
    assert summary.rows == 1600 and summary.duplicates_dropped == 0
