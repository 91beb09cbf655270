"""Siro's outgoing webhooks, simulated: signed the Svix way and delivered imperfectly.

`webhook_messages` turns the world's processing and linking events in a time window into
`integrations.recordingProcessed` / `integrations.recordingLinked` messages (a pure
function of the world, like everything here). `WebhookSender` delivers them as Svix does:
signed with the endpoint secret by the `standardwebhooks` library (`svix-*` headers, a
fresh timestamp and signature per attempt, the same `svix-id`), retried on any non-2xx or
connection failure on a backoff schedule, and, as a real network and a real Svix do,
sometimes twice, sometimes late, sometimes after a later event. Every such choice is drawn
from a seed and the message id, so a run is reproducible however time is sliced.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from standardwebhooks import Webhook

from .clock import UTC, Clock, from_ms, to_ms
from .world import World

__all__ = ["SVIX_RETRY_SCHEDULE", "DeliveryFaults", "WebhookMessage", "WebhookSender", "scaled_schedule", "webhook_messages"]

logger = logging.getLogger("siro_assets.simulator.webhooks")

#: Svix's retry schedule after a failed attempt: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
SVIX_RETRY_SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)

_EVENT_TYPES = {
    "processed": "integrations.recordingProcessed",
    "linked": "integrations.recordingLinked",
    "relinked": "integrations.recordingLinked",
}


@dataclass(frozen=True)
class WebhookMessage:
    """One webhook message: its Svix id, type, the recording, when it happened, the body."""

    msg_id: str
    event_type: str
    recording_id: str
    happened_ms: int
    payload: dict[str, Any]


def _message(world: World, r, kind: str, t: int) -> WebhookMessage:
    state = world.payload(r, t, ["crm"])
    payload: dict[str, Any] = {
        "recordingId": r.id,
        "siroUserId": r.user_id,
        "recordingProcessed": state["isProcessingDone"],
        "recordingLinked": state["crm"] is not None,
        "eventType": _EVENT_TYPES[kind],
    }
    if state["crm"] is not None:
        payload["crm"] = state["crm"]
    digest = hashlib.sha256(f"{world.config.seed}:{r.id}:{kind}:{t}".encode()).hexdigest()
    return WebhookMessage(f"msg_{digest[:27]}", _EVENT_TYPES[kind], r.id, t, payload)


def webhook_messages(world: World, after: datetime, until: datetime) -> list[WebhookMessage]:
    """The messages for events in `(after, until]`, in event order (time, then recording id)."""
    lo, hi = to_ms(after), to_ms(until)
    first_day = from_ms(lo - world.max_delay_ms).date()
    found = []
    for d in world.iter_days(first_day, from_ms(hi).date()):
        for r in world.day(d):
            for t, kind in r.events:
                if kind in _EVENT_TYPES and lo < t <= hi:
                    found.append(_message(world, r, kind, t))
    found.sort(key=lambda m: (m.happened_ms, m.recording_id, m.event_type))
    return found


@dataclass(frozen=True)
class DeliveryFaults:
    """How imperfect delivery is; the draws come from `seed` and each message id.

    A delayed message waits up to `max_delay_seconds`; a reordered one is held
    `reorder_hold_seconds`, so later events overtake it; a duplicated one is sent again
    (same id) shortly after its first copy; a dropped one (`drop_rate`) is never sent,
    as when Siro's endpoint was disabled or a message expired: polling must catch it.
    """

    seed: int = 0
    duplicate_rate: float = 0.15
    delay_rate: float = 0.2
    max_delay_seconds: float = 3.0
    reorder_rate: float = 0.15
    reorder_hold_seconds: float = 5.0
    drop_rate: float = 0.0

    def dropped(self, msg_id: str) -> bool:
        """Whether `msg_id` is never sent (its own draw, so the other faults do not shift)."""
        return self.drop_rate > 0 and random.Random(f"{self.seed}:{msg_id}:drop").random() < self.drop_rate

    def first_sends(self, msg_id: str) -> list[float]:
        """Seconds after discovery at which each copy of `msg_id` is first sent."""
        rng = random.Random(f"{self.seed}:{msg_id}")
        first = 0.0
        if rng.random() < self.delay_rate:
            first += rng.uniform(0.0, self.max_delay_seconds)
        if rng.random() < self.reorder_rate:
            first += self.reorder_hold_seconds
        sends = [first]
        if rng.random() < self.duplicate_rate:
            sends.append(first + rng.uniform(0.05, self.max_delay_seconds))
        return sends


@dataclass(frozen=True)
class _Attempt:
    message: WebhookMessage
    copy: int
    number: int  # 1 for the first attempt


class WebhookSender:
    """Delivers the world's webhook messages to one endpoint, like Svix.

    `poll()` does one pass: it picks up the events that happened on the world `clock` since
    the last pass (from `since`, default the clock's now), and sends every attempt that is
    due on the `monotonic` clock. Signing uses `wall` (the receiver checks the signed
    timestamp against its own clock, whatever the simulated time). All three clocks and
    the HTTP client are injectable, so tests never sleep.
    """

    def __init__(
        self,
        url: str,
        secret: str,
        world: World,
        clock: Clock,
        *,
        since: datetime | None = None,
        faults: DeliveryFaults = DeliveryFaults(),
        retry_schedule: tuple[float, ...] = SVIX_RETRY_SCHEDULE,
        http: httpx.Client | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        timeout: float = 15.0,
    ) -> None:
        """Send to `url` with the `whsec_...` `secret`; see the class docstring."""
        self.url = url
        self.world = world
        self.clock = clock
        self.faults = faults
        self.retry_schedule = tuple(retry_schedule)
        self._signer = Webhook(secret)
        self._http = http or httpx.Client(timeout=timeout)
        self._monotonic = monotonic
        self._wall = wall
        self._seen_until = since or clock.now()
        self._queue: list[tuple[float, int, _Attempt]] = []
        self._order = itertools.count()
        self._lock = threading.Lock()
        self.stats: Counter[str] = Counter()
        #: The messages never sent (`DeliveryFaults.drop_rate`), in event order.
        self.dropped: list[WebhookMessage] = []
        #: Called after each attempt with (msg_id, attempt number, status or None).
        self.observer: Callable[[str, int, int | None], None] | None = None

    def __repr__(self) -> str:
        return f"WebhookSender({self.url!r}, secret=<hidden>)"

    def pending(self) -> int:
        """Attempts waiting to be sent (first sends and retries)."""
        return len(self._queue)

    def poll(self) -> int:
        """Pick up new events and send the due attempts; returns how many were sent."""
        with self._lock:
            now = self.clock.now()
            if now > self._seen_until:
                start = self._monotonic()
                for message in webhook_messages(self.world, self._seen_until, now):
                    self.stats["messages"] += 1
                    if self.faults.dropped(message.msg_id):
                        self.stats["dropped"] += 1
                        self.dropped.append(message)
                        continue
                    for copy, offset in enumerate(self.faults.first_sends(message.msg_id)):
                        self._push(start + offset, _Attempt(message, copy, 1))
                self._seen_until = now
            sent = 0
            while self._queue and self._queue[0][0] <= self._monotonic():
                _, _, attempt = heapq.heappop(self._queue)
                self._send(attempt)
                sent += 1
            return sent

    def run(self, stop: threading.Event, interval: float = 0.2) -> None:
        """Poll every `interval` seconds until `stop` is set (the CLI's sender thread)."""
        while not stop.wait(interval):
            try:
                self.poll()
            except Exception:  # noqa: BLE001 - a simulator thread must keep going
                logger.exception("webhook sender pass failed")

    def close(self) -> None:
        """Close the HTTP client."""
        self._http.close()

    def _push(self, due: float, attempt: _Attempt) -> None:
        heapq.heappush(self._queue, (due, next(self._order), attempt))

    def _send(self, attempt: _Attempt) -> None:
        message = attempt.message
        body = json.dumps(message.payload, separators=(",", ":"))
        signed_at = self._wall()
        headers = {
            "content-type": "application/json",
            "user-agent": "Svix-Webhooks/1.0 (siro-simulator)",
            "svix-id": message.msg_id,
            "svix-timestamp": str(int(signed_at.timestamp())),
            "svix-signature": self._signer.sign(message.msg_id, signed_at, body),
        }
        status: int | None = None
        try:
            status = self._http.post(self.url, content=body.encode(), headers=headers).status_code
        except httpx.HTTPError:
            pass  # Svix counts a refused or timed-out connection as a failed attempt
        self.stats["attempts"] += 1
        if self.observer is not None:
            self.observer(message.msg_id, attempt.number, status)
        if status is not None and 200 <= status < 300:
            self.stats["acknowledged"] += 1
            return
        if attempt.number > len(self.retry_schedule):
            self.stats["given_up"] += 1
            logger.warning("webhook %s given up after %d attempts", message.msg_id, attempt.number)
            return
        # Svix jitters its schedule; drawn from the message so reruns match.
        jitter = random.Random(f"{self.faults.seed}:{message.msg_id}:{attempt.copy}:{attempt.number}").uniform(0.9, 1.1)
        delay = self.retry_schedule[attempt.number - 1] * jitter
        self._push(self._monotonic() + delay, _Attempt(message, attempt.copy, attempt.number + 1))


def scaled_schedule(scale: float) -> tuple[float, ...]:
    """Svix's schedule times `scale` (the demo compresses hours into minutes)."""
    return tuple(s * scale for s in SVIX_RETRY_SCHEDULE)


