"""The delivery lease: one delivery at a time, whatever launches it.

`siro.crm_delivery_lease` holds one row: the run that may send, and until when. A run
takes it before reading what is due and keeps it, renewed by a heartbeat thread and at
every ledger write, until it has recorded its last outcome. The `siro_crm` pool only
serialises runs the Dagster run queue launches; `dg launch`, the CLI and scripts bypass
it, and the lease is what they still meet.

Each acquire and renewal is one statement on a connection the caller opened for just
that. The warehouse admits one writing process at a time (the writer lock, and DuckDB's
own file lock behind it), so the statement's check and its write cannot interleave with
another process's: a lease changes hands only once it has expired or been released.
A run killed without releasing it (SIGKILL, a lost node) holds it until it expires, so
the next run waits at most `ttl` for it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta

import duckdb

from ..warehouse.backend import create_keyed_table, upsert, write_transaction
from ..warehouse.tables import transaction
from ..warehouse.lake import is_lake

LEASE_TABLE = "crm_delivery_lease"
LEASE_DDL = f"""CREATE TABLE IF NOT EXISTS {LEASE_TABLE} (
    lease VARCHAR PRIMARY KEY,               -- 'delivery': one lease per warehouse
    run_id VARCHAR NOT NULL,                 -- the run that may send
    acquired_at TIMESTAMPTZ NOT NULL,
    renewed_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL          -- past this, the run is taken for dead
)"""
_NAME = "delivery"

# Take the lease if it is free, expired or already ours; otherwise leave it as it is.
_LEASE_COLUMNS = ("lease", "run_id", "acquired_at", "renewed_at", "expires_at")


def _in_transaction(con: duckdb.DuckDBPyConnection, work: Callable[[], None]) -> None:
    with transaction(con):
        work()


def _take(con: duckdb.DuckDBPyConnection, params: dict) -> None:
    upsert(
        con, table=LEASE_TABLE, params=params, columns=_LEASE_COLUMNS, key=("lease",),
        source="SELECT $lease, $run, $now::TIMESTAMPTZ, $now::TIMESTAMPTZ, $expires::TIMESTAMPTZ",
        updates=f"""acquired_at = CASE WHEN {LEASE_TABLE}.run_id = excluded.run_id THEN {LEASE_TABLE}.acquired_at
                       ELSE excluded.acquired_at END,
    run_id = excluded.run_id, renewed_at = excluded.renewed_at, expires_at = excluded.expires_at""",
        where=f"{LEASE_TABLE}.run_id = excluded.run_id OR {LEASE_TABLE}.expires_at <= excluded.renewed_at",
    )


#: The run holding an unexpired lease at `$now` (none when free or expired), as SQL.
LIVE_HOLDER_SQL = f"(SELECT run_id FROM {LEASE_TABLE} WHERE lease = '{_NAME}' AND expires_at > $now)"

Connect = Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]


class LeaseHeld(RuntimeError):
    """Another delivery holds the lease: this one must not send."""

    def __init__(self, holder: str, expires_at: datetime | None, waited: float = 0.0) -> None:
        self.holder, self.expires_at, self.waited = holder, expires_at, waited
        until = f" until {expires_at.isoformat()}" if expires_at else ""
        super().__init__(
            f"another delivery (run {holder}) holds the delivery lease{until}; waited {waited:.0f}s. "
            "It delivers what is due; nothing was sent by this run"
        )


def take(con: duckdb.DuckDBPyConnection, run_id: str, now: datetime, ttl: float) -> tuple[str, datetime]:
    """Take or renew the lease for `run_id` if it is free, expired or ours; returns (holder, expiry)."""
    create_keyed_table(con, LEASE_DDL)
    params = {"lease": _NAME, "run": run_id, "now": now, "expires": now + timedelta(seconds=ttl)}
    if is_lake(con):
        # Two runs taking a free lease at once: one loses the COMMIT, re-runs and sees the winner.
        write_transaction(lambda: _in_transaction(con, lambda: _take(con, params)))
    else:
        _take(con, params)
    holder, expires = con.execute(
        f"SELECT run_id, expires_at FROM {LEASE_TABLE} WHERE lease = ?", [_NAME]).fetchall()[0]
    return holder, expires


def release(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """Give the lease up, if `run_id` still holds it.

    Re-run after a lake commit conflict (a heartbeat or another run's take on the same
    row): the release comes after the run's last outcome, and a lost race must not fail
    a delivery whose sends succeeded."""
    create_keyed_table(con, LEASE_DDL)

    def delete() -> None:
        con.execute(f"DELETE FROM {LEASE_TABLE} WHERE lease = ? AND run_id = ?", [_NAME, run_id])

    write_transaction(lambda: _in_transaction(con, delete))


class DeliveryLease:
    """The lease as a context manager: wait for it, keep it renewed, give it up.

    `wait` is how long to wait for a lease another live run holds (0: stop at once);
    `ttl` is how long a run that stops renewing is still taken for alive. The heartbeat
    renews every `ttl / 3` seconds of real time, on its own short connections.
    """

    def __init__(self, connect: Connect, run_id: str, *, now: Callable[[], datetime], ttl: float = 300.0,
                 wait: float = 900.0, poll: float = 1.0, sleep: Callable[[float], None] = time.sleep,
                 log: logging.Logger | logging.LoggerAdapter = logging.getLogger("siro_assets.crm")) -> None:
        self.connect, self.run_id, self.now = connect, run_id, now
        self.ttl, self.wait, self.poll, self.sleep, self.log = ttl, wait, poll, sleep, log
        self.lost_to: str | None = None
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    def __enter__(self) -> "DeliveryLease":
        self.acquire()
        self._heartbeat = threading.Thread(target=self._beat, name=f"lease-{self.run_id}", daemon=True)
        self._heartbeat.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=60)
        try:
            with self.connect() as con:
                release(con, self.run_id)
        except Exception as err:
            if exc[0] is None:
                raise
            # The delivery's own error is the one to see; an unreleased lease expires in `ttl`.
            self.log.warning(f"Could not release the delivery lease ({type(err).__name__}); it expires by itself")

    def acquire(self) -> None:
        """Take the lease, waiting (polling) while another live run holds it; `LeaseHeld` past `wait`."""
        waited, waited_for = 0.0, None
        while True:
            with self.connect() as con:
                holder, expires = take(con, self.run_id, self.now(), self.ttl)
            if holder == self.run_id:
                if waited_for is not None:
                    self.log.info(f"Delivery lease taken after waiting {waited:.0f}s for run {waited_for}")
                return
            if waited >= self.wait:
                raise LeaseHeld(holder, expires, waited)
            if waited_for != holder:
                self.log.warning(f"Waiting for the delivery lease: run {holder} holds it until {expires.isoformat()}")
                waited_for = holder
            step = min(self.poll, self.wait - waited)
            self.sleep(step)
            waited += step

    def renew(self, con: duckdb.DuckDBPyConnection) -> bool:
        """Renew on the caller's connection; False (and `lost_to` set) when another run took it."""
        holder, _ = take(con, self.run_id, self.now(), self.ttl)
        if holder != self.run_id:
            self.lost_to = holder
        return holder == self.run_id

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                with self.connect() as con:
                    self.renew(con)
            except Exception as exc:  # the next ledger write renews (or finds the lease lost)
                self.log.warning(f"Could not renew the delivery lease: {type(exc).__name__}")
