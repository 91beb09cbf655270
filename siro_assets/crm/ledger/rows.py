"""How the ledger writes: one short transaction, and a batch of rows as one parameter.

Every write is one short transaction on a connection the caller opened for just that:
delivery never holds the warehouse while it waits on a CRM.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence

import duckdb

from ...warehouse.backend import write_transaction
from ...warehouse.tables import transaction

# Types a JSON object's field can hold as such; the others travel as text and are cast.
_NATIVE = ("VARCHAR", "INTEGER", "BOOLEAN")


def in_transaction(con: duckdb.DuckDBPyConnection, work: Callable[[], None]) -> None:
    """Run `work` in one transaction; on a lake, where a concurrent writer may win the
    commit, the whole transaction re-runs."""
    def once() -> None:
        with transaction(con):
            work()

    write_transaction(once)


class RowBatch:
    """Rows of one shape, keyed by column name, passed as one JSON parameter `$rows`.

    One parameter makes each ledger write one statement: DuckDB's `executemany` runs a
    statement per row, which costs milliseconds each.
    """

    def __init__(self, columns: Mapping[str, str]) -> None:
        self.columns = dict(columns)
        """Column name -> SQL type; a row may leave a column out (it reads as NULL)."""

    @property
    def source(self) -> str:
        """A FROM clause that unnests `$rows` into the batch's columns, typed."""
        structure = json.dumps([{n: t if t in _NATIVE else "VARCHAR" for n, t in self.columns.items()}])
        typed = ", ".join(n if t in _NATIVE else f"{n}::{t} AS {n}" for n, t in self.columns.items())
        rows = f"SELECT unnest(from_json($rows::JSON, '{structure.replace(chr(39), chr(39) * 2)}'), recursive := true)"
        return f"(SELECT {typed} FROM ({rows}))"

    def params(self, rows: Sequence[Mapping[str, object]], **more: object) -> dict[str, object]:
        """The query parameters for `rows` (plus `more`)."""
        unknown = {k for row in rows for k in row} - self.columns.keys()
        if unknown:
            raise ValueError(f"rows carry columns the batch does not have: {sorted(unknown)}")
        return {"rows": json.dumps(list(rows), default=str), **more}
