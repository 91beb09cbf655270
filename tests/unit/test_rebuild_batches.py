"""Rebuilding a long range of days in batches gives exactly the one-transaction result."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from siro_assets.transforms import DERIVED_TABLES, rebuild_partitions
from siro_assets.transforms.rebuild import partition_batches

from tests.raw_payloads import load_raw, recording, ref

DAYS = [date(2026, 1, 5) + timedelta(days=i) for i in range(6)]


def _load(con) -> None:
    records = []
    for n, day in enumerate(DAYS):
        for i in range(n % 3 + 1):  # 1, 2 or 3 recordings a day
            records.append(recording(
                f"r{n}_{i}", day, hour=i + 8,
                crm={"integrationConnectionId": "ic", "users": [ref(f"u{n}", f"U{n}")],
                     "contacts": [ref(f"c{n}{i}", f"C{n}{i}")], "engagement": ref(f"e{n}", f"E{n}"),
                     "opportunity": None, "account": None, "lead": None},
                summary=[{"id": "s", "name": "Recap", "content": f"day {n}"}],
                entityExtractions=[{"name": "budget", "value": n * 10 + i,
                                    "mappings": [{"crmModelName": "Contact", "crmFieldName": "Budget"}]}],
            ))
    load_raw(con, records, DAYS)


def _dump(con, table):
    return con.execute(f"SELECT * FROM {table.name} ORDER BY ALL").fetchall()


def test_partition_batches_bound_recordings_per_transaction(con):
    _load(con)
    batches = partition_batches(con, list(reversed(DAYS)), max_recordings=3)
    assert [d for batch in batches for d in batch] == DAYS  # every day once, in order
    counts = {DAYS[n]: n % 3 + 1 for n in range(len(DAYS))}
    assert all(sum(counts[d] for d in batch) <= 3 or len(batch) == 1 for batch in batches)
    assert len(batches) == 4  # [1, 2], [3], [1, 2], [3]


@pytest.mark.parametrize("table", DERIVED_TABLES, ids=lambda t: t.name)
def test_batched_rebuild_equals_one_transaction(con, table):
    _load(con)
    whole = rebuild_partitions(con, table, DAYS, max_recordings_per_batch=10**9)
    expected = _dump(con, table)
    batched = rebuild_partitions(con, table, DAYS, max_recordings_per_batch=2)
    assert batched == whole == len(expected) > 0
    assert _dump(con, table) == expected
    # Insertion order is switched off only for the rebuild.
    assert con.execute("SELECT current_setting('preserve_insertion_order')").fetchone()[0] is True
