"""One delivery run: due writes from the ledger, through each connection's sink, outcomes back.

The warehouse connection is opened only around each ledger read or write (the
`connect` callable yields one); nothing holds it while a CRM is being called. For each
batch the intent is recorded before sending and the outcomes after, so a crash in
between leaves the field due (re-sent next run, with the same delivery key) and never
marks an unsent write as delivered.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

import duckdb

from .calls import CrmUnreachable
from .config import Routing
from .lease import LeaseHeld, release_lease, take_lease
from .ledger import (
    Candidate, ensure_ledger, log_orphans, orphaned_intents, read_candidates, record_intent, record_outcomes,
)
from .sinks import DeliveryStopped, Sink, SinkFactory
from .writes import (
    DELIVERED, DRY_RUN, FAILED, NO_ROUTE, REJECTED, FieldWrite, Outcome,
)
from .values import is_sendable

logger = logging.getLogger("siro_assets.crm")

Connect = Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]


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

    def run(self, partitions: Sequence[date] | None = None) -> DeliveryReport:
        """Deliver every due write; log unchanged fields that have a plan row in `partitions`.

        A real delivery holds the delivery lease (`lease.py`) from before it reads what is
        due until it ends; a run that finds another's live lease sends nothing and says so
        in `stopped`. A dry run sends nothing and takes no lease.
        """
        try:
            return self._run(partitions)
        except LeaseHeld as held:
            self.report.stopped.append(f"lease: {held}")
            self.log.warning(f"CRM delivery skipped: {held}")
            return self.report
        finally:
            if not self.dry_run:
                with self.connect() as con:
                    release_lease(con, self.run_id)

    def _run(self, partitions: Sequence[date] | None) -> DeliveryReport:
        with self.connect() as con:
            ensure_ledger(con)
            if not self.dry_run:
                # Before reading what is due: the run that holds the lease is the only
                # one that reads, sends and adopts intents, so none is sent twice.
                take_lease(con, self.run_id, self.now())
            write_nulls = {cid: s.write_nulls for cid, s in self.routing.connections.items()}
            candidates = read_candidates(con, partitions, write_nulls)
            if not self.dry_run:
                orphans = orphaned_intents(con, self.run_id)
                if orphans:
                    self.log.warning(f"{len(orphans)} write(s) from an interrupted run have no outcome; re-sending")
                    log_orphans(con, orphans, self.run_id, self.now())
        # Unchanged fields are a count per run (the materialization's `unchanged`), never
        # a log row each: a sensor run touches today about once a minute, and a row per
        # unchanged field would grow the log with the number of runs, not of changes.
        self.report.unchanged = sum(1 for c in candidates if not c.due and c.in_run)

        by_route: dict[int, tuple[object, list[Candidate]]] = {}
        for c in candidates:
            if not c.due:
                continue
            settings = self.routing.for_connection(c.write.connection_id)
            by_route.setdefault(id(settings), (settings, []))[1].append(c)
        for settings, due in by_route.values():
            self._deliver_route(settings, due)
        self.log.info(f"CRM writebacks: {self.report.metadata()}")
        return self.report

    def _record(self, outcomes: list[Outcome], sink: str, *, update_state: bool = True) -> None:
        with self.connect() as con:
            record_outcomes(con, outcomes, sink, self.run_id, self.now(), update_state=update_state)

    def _deliver_route(self, settings, due: list[Candidate]) -> None:
        if settings is None:
            outcomes = [
                Outcome(c.write, REJECTED, None, NO_ROUTE,
                        f"no sink configured for connection {c.write.connection_id} and no \"*\" entry", "no_route")
                for c in due if not c.rejected_before("no_route")
            ]
            self.report.count(outcomes)
            self._record(outcomes, "none", update_state=not self.dry_run)
            return
        writes: list[FieldWrite] = []
        for c in due:
            # The plan never makes a blank a target; this guard keeps it that way whatever the ledger says.
            if not is_sendable(c.write.value, write_nulls=settings.write_nulls):
                self.report.nulls_withheld += 1
            else:
                writes.append(c.write)
        if not writes:
            return
        by_identity = {c.write.identity: c for c in due}
        sink = self.sinks(settings)
        try:
            self._through(sink, writes, by_identity)
        finally:
            self.report.api_calls += sink.stats.api_calls
            self.report.rate_limited += sink.stats.rate_limited
            sink.close()

    def _stop(self, sink: Sink, exc: Exception, code: str) -> None:
        self.report.stopped.append(f"{sink.name}: {code}")
        self.report.error_codes[code] += 1
        self.log.warning(f"{sink.name} stopped the delivery: {exc}; the rest waits for the next run")

    def _is_old_reject(self, outcome_or_prepared, by_identity) -> bool:
        c = by_identity[outcome_or_prepared.write.identity]
        return not self.retry_rejects and c.rejected_before(outcome_or_prepared.fingerprint)

    def _through(self, sink: Sink, writes: list[FieldWrite], by_identity: dict) -> None:
        try:
            prepared, rejects = sink.prepare(writes)
        except (DeliveryStopped, CrmUnreachable) as exc:
            self._stop(sink, exc, getattr(exc, "code", "unreachable"))
            return
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
            return
        for batch in sink.batches(sendable):
            with self.connect() as con:
                # Renewed before each batch; if it lapsed and another run took it over,
                # this raises and the batch is never sent.
                take_lease(con, self.run_id, self.now())
                record_intent(con, [p.write for p in batch], self.run_id, self.now())
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
                return


def deliver(connect: Connect, routing: Routing, *, run_id: str, partitions: Sequence[date] | None = None,
            **options) -> DeliveryReport:
    """Run one delivery (see `Delivery`)."""
    return Delivery(connect, routing, run_id=run_id, **options).run(partitions)
