"""The delivery lease: one CRM delivery at a time per warehouse, whatever launches it.

A row in the ledger (`siro.crm_delivery_lease`) names the run that may send and until
when. A delivery takes it before it reads what is due, renews it before every batch it
sends, and releases it when done. Another run that finds a live lease held by someone
else sends nothing; a lease that expired (its run died without releasing it) may be
taken over, and only then are that run's unanswered intents adopted. The Dagster pool
is a convenience on top; this holds for `dg launch`, CLI and concurrent runs alike,
because every read and write of the row happens inside the warehouse's writer lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb

from ..warehouse.schema import SCHEMA

LEASE_TABLE = f"{SCHEMA}.crm_delivery_lease"
LEASE_NAME = "delivery"
# Longer than any one batch can take (each CRM call has a timeout and bounded retries),
# so a live run renews it long before it lapses.
LEASE_TTL = timedelta(minutes=15)

LEASE_DDL = f"""CREATE TABLE IF NOT EXISTS {LEASE_TABLE} (
    name VARCHAR PRIMARY KEY,
    run_id VARCHAR NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
)"""


# The run holding a live lease at `$now`, or NULL: a scalar subquery for ledger SQL.
LIVE_HOLDER_SQL = f"(SELECT run_id FROM {LEASE_TABLE} WHERE name = '{LEASE_NAME}' AND expires_at > $now)"


def live_holder(con: duckdb.DuckDBPyConnection, now: datetime) -> str | None:
    """The run that holds a live lease at `now`, if any."""
    con.execute(LEASE_DDL)
    return con.execute(f"SELECT {LIVE_HOLDER_SQL}", {"now": now}).fetchall()[0][0]


@dataclass
class LeaseHeld(Exception):
    """Another live run holds the delivery lease."""

    holder: str
    expires_at: datetime

    def __str__(self) -> str:
        return (f"another delivery (run {self.holder}) holds the CRM delivery lease until "
                f"{self.expires_at.isoformat()}; nothing was sent by this run")


def take_lease(con: duckdb.DuckDBPyConnection, run_id: str, now: datetime, ttl: timedelta = LEASE_TTL) -> None:
    """Take or renew the lease for `run_id` until `now + ttl`; raise `LeaseHeld` if another
    run holds a lease that has not expired. Call it on a connection holding the writer lock."""
    con.execute(LEASE_DDL)
    con.execute("BEGIN TRANSACTION")
    try:
        rows = con.execute(
            f"SELECT run_id, expires_at FROM {LEASE_TABLE} WHERE name = ?", [LEASE_NAME]
        ).fetchall()
        if rows and rows[0][0] != run_id and rows[0][1] > now:
            raise LeaseHeld(rows[0][0], rows[0][1])
        con.execute(
            f"INSERT OR REPLACE INTO {LEASE_TABLE} VALUES (?, ?, ?)", [LEASE_NAME, run_id, now + ttl]
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def release_lease(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """Give the lease up, if `run_id` still holds it."""
    con.execute(LEASE_DDL)
    con.execute(f"DELETE FROM {LEASE_TABLE} WHERE name = ? AND run_id = ?", [LEASE_NAME, run_id])
