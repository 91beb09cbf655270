"""The simulator's webhook sender: Siro's events, signed the Svix way, delivered imperfectly."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from siro_assets.simulator import FixedClock, World, WorldConfig
from siro_assets.simulator.webhook_sender import (
    SVIX_RETRY_SCHEDULE,
    DeliveryFaults,
    WebhookSender,
    webhook_messages,
)
from siro_assets.webhooks.models import RecordingEvent
from siro_assets.webhooks.verify import StandardWebhooksVerifier

from .test_webhook_verify import SECRET

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)
SINCE = NOW - timedelta(hours=12)
WORLD = World(WorldConfig(seed=7, recordings_per_day=40))


class Ticker:
    """The sender's monotonic clock, moved by the test (no wall-clock sleeps)."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Receiver:
    """An httpx transport that verifies like the real receiver and answers from a script."""

    def __init__(self, statuses=()) -> None:
        self.statuses = list(statuses)
        self.requests: list[tuple[str, dict, int]] = []
        self.verifier = StandardWebhooksVerifier(SECRET)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        delivery = self.verifier.verify(body, request.headers)
        RecordingEvent.model_validate_json(body)
        payload = json.loads(body)
        status = self.statuses.pop(0) if self.statuses else 200
        self.requests.append((delivery.message_id, payload, status))
        return httpx.Response(status)


def sender(receiver, ticker, *, faults=DeliveryFaults(seed=3), schedule=(1.0, 2.0, 4.0), since=SINCE):
    return WebhookSender(
        "http://receiver/webhooks/siro", SECRET, WORLD, FixedClock(NOW), since=since, faults=faults,
        retry_schedule=schedule, http=httpx.Client(transport=httpx.MockTransport(receiver)),
        monotonic=ticker, wall=lambda: datetime.now(timezone.utc),
    )


def drain(s, ticker, step=0.5, limit=400):
    for _ in range(limit):
        s.poll()
        if not s.pending():
            return
        ticker.t += step
    raise AssertionError("the sender never finished")


def test_messages_are_the_worlds_processing_and_linking_events_in_the_window():
    messages = webhook_messages(WORLD, SINCE, NOW)
    assert messages, "a 12-hour window of a 40-a-day world has events"
    kinds = {m.event_type for m in messages}
    assert kinds == {"integrations.recordingProcessed", "integrations.recordingLinked"}
    for m in messages:
        assert SINCE < datetime.fromtimestamp(m.happened_ms / 1000, timezone.utc) <= NOW
        truth = WORLD.payload(WORLD.base(m.recording_id), m.happened_ms, ["crm"])
        assert m.payload["recordingProcessed"] is truth["isProcessingDone"]
        assert m.payload.get("crm") == truth["crm"]
        if m.event_type.endswith("recordingLinked"):
            assert m.payload["recordingLinked"] is True and m.payload["crm"]
        RecordingEvent.model_validate(m.payload)
    assert len({m.msg_id for m in messages}) == len(messages)
    # Windows compose: two halves are the whole.
    mid = SINCE + timedelta(hours=5)
    assert webhook_messages(WORLD, SINCE, mid) + webhook_messages(WORLD, mid, NOW) == messages


def test_every_request_is_signed_and_verifies_with_the_endpoint_secret():
    receiver, ticker = Receiver(), Ticker()
    drain(sender(receiver, ticker), ticker)
    assert {mid for mid, _, _ in receiver.requests} == {m.msg_id for m in webhook_messages(WORLD, SINCE, NOW)}


def test_some_are_sent_twice_some_out_of_order_and_some_late_always_the_same_way():
    receiver, ticker = Receiver(), Ticker()
    s = sender(receiver, ticker)
    sent_at = {}
    s.observer = lambda msg_id, attempt, status: sent_at.setdefault(msg_id, []).append(ticker.t)
    drain(s, ticker)
    ids = [mid for mid, _, _ in receiver.requests]
    in_event_order = [m.msg_id for m in webhook_messages(WORLD, SINCE, NOW)]
    assert len(ids) > len(set(ids)), "some messages are delivered twice"
    first_seen = list(dict.fromkeys(ids))
    assert first_seen != in_event_order, "some messages overtake earlier events"
    assert any(times[0] > 1000.0 for times in sent_at.values()), "some are delayed"
    assert any(times[0] == 1000.0 for times in sent_at.values()), "most go out at once"

    again, ticker2 = Receiver(), Ticker()
    drain(sender(again, ticker2), ticker2)
    assert [mid for mid, _, _ in again.requests] == ids, "seeded: the same run every time"


def test_a_non_2xx_is_retried_on_the_backoff_schedule_each_attempt_signed():
    only_once = DeliveryFaults(seed=3, duplicate_rate=0, delay_rate=0, reorder_rate=0)
    ticker, seen = Ticker(), {}
    verifier = StandardWebhooksVerifier(SECRET)

    def fail_twice(request):
        delivery = verifier.verify(request.read(), request.headers)  # every attempt is signed anew
        seen.setdefault(delivery.message_id, []).append(request.headers["svix-timestamp"])
        return httpx.Response({1: 503, 2: 500}.get(len(seen[delivery.message_id]), 200))

    s = WebhookSender("http://receiver/webhooks/siro", SECRET, WORLD, FixedClock(NOW), since=SINCE,
                      faults=only_once, retry_schedule=(1.0, 2.0, 4.0), monotonic=ticker,
                      http=httpx.Client(transport=httpx.MockTransport(fail_twice)))
    attempts = {}
    s.observer = lambda msg_id, attempt, status: attempts.setdefault(msg_id, []).append((ticker.t, attempt, status))
    drain(s, ticker, step=0.25)
    assert len(attempts) == len(webhook_messages(WORLD, SINCE, NOW))
    for tries in attempts.values():
        assert [(n, status) for _, n, status in tries] == [(1, 503), (2, 500), (3, 200)]
        gaps = [b[0] - a[0] for a, b in zip(tries, tries[1:])]
        # Svix's schedule with its +-10% jitter, seen through a 0.25 s polling step.
        assert 0.9 <= gaps[0] <= 1.1 + 0.25 and 1.8 <= gaps[1] <= 2.2 + 0.25
    assert s.stats["acknowledged"] == len(attempts) and s.stats["given_up"] == 0


def test_a_message_nobody_acknowledges_is_given_up_after_the_schedule():
    only_one = DeliveryFaults(seed=3, duplicate_rate=0, delay_rate=0, reorder_rate=0)
    receiver, ticker = Receiver(statuses=[500] * 100), Ticker()
    s = sender(receiver, ticker, faults=only_one, schedule=(1.0, 1.0))
    drain(s, ticker)
    n = len(webhook_messages(WORLD, SINCE, NOW))
    assert len(receiver.requests) == 3 * n
    assert s.stats["given_up"] == n and s.stats["acknowledged"] == 0


def test_an_unreachable_receiver_counts_as_a_failure_and_is_retried():
    ticker = Ticker()
    calls = []

    def down_then_up(request):
        calls.append(1)
        if len(calls) == 1:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(204)

    only_one = DeliveryFaults(seed=3, duplicate_rate=0, delay_rate=0, reorder_rate=0)
    s = WebhookSender("http://receiver/webhooks/siro", SECRET, WORLD, FixedClock(NOW), since=SINCE,
                      faults=only_one, retry_schedule=(1.0,), monotonic=ticker,
                      http=httpx.Client(transport=httpx.MockTransport(down_then_up)))
    drain(s, ticker)
    n = len(webhook_messages(WORLD, SINCE, NOW))
    assert s.stats["acknowledged"] == n and len(calls) == n + 1


def test_the_svix_schedule_is_the_documented_one():
    assert SVIX_RETRY_SCHEDULE == (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)


def test_the_payload_sent_is_exactly_the_signed_bytes():
    receiver, ticker = Receiver(), Ticker()
    drain(sender(receiver, ticker, faults=DeliveryFaults(seed=3, duplicate_rate=0)), ticker)
    by_id = {m.msg_id: m.payload for m in webhook_messages(WORLD, SINCE, NOW)}
    for mid, payload, _ in receiver.requests:
        assert json.loads(json.dumps(payload)) == by_id[mid]


def test_a_drop_fraction_never_sends_some_messages_always_the_same_ones():
    receiver, ticker = Receiver(), Ticker()
    s = sender(receiver, ticker, faults=DeliveryFaults(seed=3, drop_rate=0.3))
    drain(s, ticker)
    messages = webhook_messages(WORLD, SINCE, NOW)
    sent = {mid for mid, _, _ in receiver.requests}
    dropped = {m.msg_id for m in s.dropped}
    assert sent | dropped == {m.msg_id for m in messages} and not sent & dropped
    assert 0.15 * len(messages) <= len(dropped) <= 0.45 * len(messages), (len(dropped), len(messages))
    assert s.stats["dropped"] == len(dropped) and s.stats["messages"] == len(messages)

    again, ticker2 = Receiver(), Ticker()
    s2 = sender(again, ticker2, faults=DeliveryFaults(seed=3, drop_rate=0.3))
    drain(s2, ticker2)
    assert [m.msg_id for m in s2.dropped] == [m.msg_id for m in s.dropped], "seeded: the same drops every time"
    # Dropping draws apart from the other faults: the messages still sent go out as without drops.
    undropped, ticker3 = Receiver(), Ticker()
    drain(sender(undropped, ticker3, faults=DeliveryFaults(seed=3)), ticker3)
    assert [mid for mid, _, _ in receiver.requests] == [mid for mid, _, _ in undropped.requests if mid not in dropped]


def test_the_cli_passes_the_drop_fraction_to_the_sender():
    from siro_assets.simulator.__main__ import build_parser, start_webhook_sender

    args = build_parser().parse_args(["--webhook-url", "http://127.0.0.1:9/webhooks/siro", "--webhook-secret", SECRET,
                                      "--webhook-seed", "3", "--webhook-drop-fraction", "0.3"])
    s, stop, thread = start_webhook_sender(args, WORLD, FixedClock(NOW))
    stop.set()
    thread.join(timeout=5)
    s.close()
    assert s.faults == DeliveryFaults(seed=3, drop_rate=0.3)
