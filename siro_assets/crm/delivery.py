"""One delivery run: due writes from the ledger, through each connection's sink, outcomes back.

The warehouse connection is opened only around each ledger read or write (the
`connect` callable yields one); nothing holds it while a CRM is being called. For each
batch the intent is recorded before sending and the outcomes after, so a crash in
between leaves the field due (re-sent next run, with the same delivery key) and never
marks an unsent write as delivered.

One delivery at a time: a run takes the delivery lease (`lease.py`) before it reads what
is due and keeps it until its last outcome is recorded; each batch's intent is written
only while the lease is still this run's. Due fields are queued in DuckDB and read back
in pages of `PAGE_RECORDS` CRM records; unchanged fields are counted, not logged.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

import duckdb

from ..redaction import describe
from .calls import CrmUnreachable
from .config import Routing
from .lease import DeliveryLease, LeaseHeld
from .ledger import (
    Candidate, count_unchanged, drop_due, due_page, ensure_ledger, log_orphans, orphaned_intents, record_intent,
    record_outcomes, record_run, stage_due,
)
from .sinks import DeliveryStopped, Sink, SinkFactory
from .writes import DELIVERED, DRY_RUN, FAILED, NO_ROUTE, REJECTED, FieldWrite, Outcome
from .values import is_sendable

logger = logging.getLogger("siro_assets.crm")

Connect = Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]

#: CRM records per page of due fields read back from the queue: what bounds memory.
PAGE_RECORDS = 2_000


class _LeaseLost(Exception):
    """Another run took the lease (this one stopped renewing it for longer than its ttl)."""


@dataclass
class DeliveryReport:
    """What a delivery did, in numbers a chart can plot."""

    delivered: int = 0
    unchanged: int = 0
    rejected: int = 0
    failed: int = 0
    dry_run: int = 0
    nulls_withheld: int = 0
    rejects_outstanding: int = 0
    """Fields not re-sent because the same value was rejected under the same configuration."""
    api_calls: int = 0
    rate_limited: int = 0
    error_codes: Counter = field(default_factory=Counter)
    stopped: list[str] = field(default_factory=list)

    def count(self, outcomes: Sequence[Outcome]) -> None:
        """Add outcomes to the tallies."""
        for o in outcomes:
            if o.status == DELIVERED:
                self.delivered += 1
            elif o.status == REJECTED:
                self.rejected += 1
            elif o.status == FAILED:
                self.failed += 1
            elif o.status == DRY_RUN:
                self.dry_run += 1
            if o.error_code and o.status in (REJECTED, FAILED):
                self.error_codes[o.error_code] += 1

    def metadata(self) -> dict[str, int]:
        """The counts, flat."""
        return {
            "delivered": self.delivered, "unchanged": self.unchanged, "rejected": self.rejected,
            "failed": self.failed, "dry_run": self.dry_run, "nulls_withheld": self.nulls_withheld,
            "rejects_outstanding": self.rejects_outstanding, "api_calls": self.api_calls,
            "rate_limited_429s": self.rate_limited,
        }


class Delivery:
    """Delivers due CRM field writes for one run."""

    def __init__(
        self,
        connect: Connect,
        routing: Routing,
        *,
        run_id: str,
        sinks: Callable[..., Sink] | None = None,
        dry_run: bool = False,
        retry_rejects: bool = False,
        now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        log: logging.Logger | logging.LoggerAdapter = logger,
        lease_wait_seconds: float = 900.0,
        lease_ttl_seconds: float = 300.0,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.connect = connect
        self.routing = routing
        self.run_id = run_id
        self.sinks = sinks or SinkFactory(connect, run_id=run_id, now=now)
        self.dry_run = dry_run
        self.retry_rejects = retry_rejects
        self.now = now
        self.log = log
        self.report = DeliveryReport()
        self.lease = DeliveryLease(connect, run_id, now=now, ttl=lease_ttl_seconds, wait=lease_wait_seconds,
                                   log=log, **({"sleep": sleep} if sleep else {}))
        self._sinks: dict[int, Sink] = {}

    def run(self, partitions: Sequence[date] | None = None) -> DeliveryReport:
        """Deliver every due write; count the unchanged fields that have a plan row in `partitions`.

        Waits up to `lease_wait_seconds` for a delivery another run is making, then stops
        cleanly (`report.stopped` says why) without sending anything.
        """
        started = self.now()
        with self.connect() as con:
            ensure_ledger(con)
        try:
            with self.lease:
                self._deliver(partitions)
        except LeaseHeld as exc:
            self.report.stopped.append(f"lease: held by run {exc.holder}")
            self.log.warning(f"CRM writebacks not run: {exc}")
        except _LeaseLost:
            self.report.stopped.append(f"lease: lost to run {self.lease.lost_to}")
            self.log.warning(f"Run {self.lease.lost_to} took the delivery lease; the rest waits for the next run")
        with self.connect() as con:
            record_run(con, self.run_id, started, self.now(), partitions, self.dry_run, self.report.metadata(),
                       self.report.stopped)
        self.log.info(f"CRM writebacks: {self.report.metadata()}")
        return self.report

    def _deliver(self, partitions: Sequence[date] | None) -> None:
        write_nulls = {cid: s.write_nulls for cid, s in self.routing.connections.items()}
        with self.connect() as con:
            if not self.dry_run:
                orphans = orphaned_intents(con, self.run_id, self.now())
                if orphans:
                    self.log.warning(f"{len(orphans)} write(s) from an interrupted run have no outcome; re-sending")
                    log_orphans(con, orphans, self.run_id, self.now())
            self.report.unchanged = count_unchanged(con, partitions, write_nulls)
            records = stage_due(con, self.run_id, self.now(), write_nulls)
        stopped: set[int] = set()
        try:
            for after in range(0, records, PAGE_RECORDS):
                with self.connect() as con:
                    page = due_page(con, self.run_id, after, PAGE_RECORDS)
                by_route: dict[int, tuple[object, list[Candidate]]] = {}
                for c in page:
                    settings = self.routing.for_connection(c.write.connection_id)
                    by_route.setdefault(id(settings), (settings, []))[1].append(c)
                for route, (settings, due) in by_route.items():
                    # A sink that stopped (quota, credentials) is not called again this run.
                    if route not in stopped and not self._deliver_route(settings, due):
                        stopped.add(route)
        except BaseException:
            # The delivery's own error is the one to see: a clean-up that fails as well
            # (the warehouse locked, a sink's close) is logged, not raised over it. Queue
            # rows left behind are dropped by a later run's `stage_due`.
            self._clean_up(raise_errors=False)
            raise
        self._clean_up(raise_errors=True)

    def _clean_up(self, *, raise_errors: bool) -> None:
        """Close every sink (counting its calls) and empty this run's queue; each step is
        tried whatever the others do, and the first error is raised if `raise_errors`."""
        steps = [functools.partial(self._close_sink, sink) for sink in self._sinks.values()]
        steps.append(self._drop_due)
        errors = []
        for step in steps:
            try:
                step()
            except Exception as error:  # noqa: BLE001 - raised below, or logged under the delivery's own
                errors.append(error)
                if not raise_errors:
                    self.log.warning(f"Clean-up after a failed delivery also failed: {describe(error)}")
        if raise_errors and errors:
            raise errors[0]

    def _close_sink(self, sink) -> None:
        self.report.api_calls += sink.stats.api_calls
        self.report.rate_limited += sink.stats.rate_limited
        sink.close()

    def _drop_due(self) -> None:
        with self.connect() as con:
            drop_due(con, self.run_id)

    def _record(self, outcomes: list[Outcome], sink: str, *, update_state: bool = True) -> None:
        if not outcomes:
            return
        with self.connect() as con:
            record_outcomes(con, outcomes, sink, self.run_id, self.now(), update_state=update_state)

    def _deliver_route(self, settings, due: list[Candidate]) -> bool:
        """Deliver one page's writes of one route; False once its sink stopped the delivery."""
        if settings is None:
            outcomes = [
                Outcome(c.write, REJECTED, None, NO_ROUTE,
                        f"no sink configured for connection {c.write.connection_id} and no \"*\" entry", "no_route")
                for c in due if not c.rejected_before("no_route")
            ]
            self.report.count(outcomes)
            self._record(outcomes, "none", update_state=not self.dry_run)
            return True
        writes: list[FieldWrite] = []
        for c in due:
            # The plan never makes a blank a target; this guard keeps it that way whatever the ledger says.
            if not is_sendable(c.write.value, write_nulls=settings.write_nulls):
                self.report.nulls_withheld += 1
            else:
                writes.append(c.write)
        if not writes:
            return True
        by_identity = {c.write.identity: c for c in due}
        # One sink per route for the whole run: its token and describe cache outlive a page.
        sink = self._sinks.get(id(settings))
        if sink is None:
            sink = self._sinks[id(settings)] = self.sinks(settings)
        return self._through(sink, writes, by_identity)

    def _stop(self, sink: Sink, exc: Exception, code: str) -> None:
        self.report.stopped.append(f"{sink.name}: {code}")
        self.report.error_codes[code] += 1
        self.log.warning(f"{sink.name} stopped the delivery: {exc}; the rest waits for the next run")

    def _is_old_reject(self, outcome_or_prepared, by_identity) -> bool:
        c = by_identity[outcome_or_prepared.write.identity]
        return not self.retry_rejects and c.rejected_before(outcome_or_prepared.fingerprint)

    def _through(self, sink: Sink, writes: list[FieldWrite], by_identity: dict) -> bool:
        try:
            prepared, rejects = sink.prepare(writes)
        except (DeliveryStopped, CrmUnreachable) as exc:
            self._stop(sink, exc, getattr(exc, "code", "unreachable"))
            return False
        fresh = [r for r in rejects if not self._is_old_reject(r, by_identity)]
        self.report.rejects_outstanding += len(rejects) - len(fresh)
        self.report.count(fresh)
        self._record(fresh, sink.name, update_state=not self.dry_run)
        sendable = [p for p in prepared if not self._is_old_reject(p, by_identity)]
        self.report.rejects_outstanding += len(prepared) - len(sendable)
        if self.dry_run:
            would = [Outcome(p.write, DRY_RUN, fingerprint=p.fingerprint) for p in sendable]
            self.report.count(would)
            self._record(would, sink.name, update_state=False)
            return True
        for batch in sink.batches(sendable):
            with self.connect() as con:
                # Fencing: the intent is written only while the lease is this run's.
                if not self.lease.renew(con):
                    raise _LeaseLost()
                claimed = record_intent(con, [p.write for p in batch], self.run_id, self.now())
            batch = [p for p in batch if p.write.identity in claimed]
            if not batch:
                continue
            stopped = None
            try:
                outcomes = sink.send(batch)
            except DeliveryStopped as exc:
                stopped = exc
                # Writes of the batch the sink had not answered for were not applied.
                answered = {id(o.write) for o in exc.outcomes}
                outcomes = exc.outcomes + [
                    Outcome(p.write, FAILED, exc.http_status, exc.code, exc.message, p.fingerprint)
                    for p in batch if id(p.write) not in answered
                ]
            self.report.count(outcomes)
            self._record(outcomes, sink.name)
            if stopped is not None:
                self._stop(sink, stopped, stopped.code)
                return False
        return True


def deliver(connect: Connect, routing: Routing, *, run_id: str, partitions: Sequence[date] | None = None,
            **options) -> DeliveryReport:
    """Run one delivery (see `Delivery`)."""
    return Delivery(connect, routing, run_id=run_id, **options).run(partitions)
