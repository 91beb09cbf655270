"""Replay: re-queue stored events, or given recording ids, as new inbox entries.

``python -m siro_assets.webhooks replay --endpoint siro --since 2026-03-01T00:00:00Z``
(or ``--ids rec_1,rec_2``) appends one new event per recording, with a message id unique to
this replay, so the webhook sensor, whose cursor is past the originals, drains them
again and requests one run fetching exactly those recordings. Only what the inbox still
holds can be replayed by `--since` (its retention is 3 days); older changes are the
`updatedAt` sensor's (rewind its cursor, docs/OPERATIONS.md). No Dagster, no HTTP.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

from .inbox import Inbox, InboxEvent, InboxFull

__all__ = ["REPLAY_EVENT_TYPE", "Replayed", "main", "replay"]

#: The event type of a replay of given ids (a stored event's replay keeps its own type).
REPLAY_EVENT_TYPE = "siro.replay"


@dataclass(frozen=True)
class Replayed:
    """What a replay appended: the new seqs, in order, and whether the inbox filled up first."""

    seqs: tuple[int, ...]
    recording_ids: tuple[str, ...]
    full: bool = False


def _stored_since(inbox: Inbox, endpoint: str, since: datetime) -> list[InboxEvent]:
    # The latest stored event of each recording received at or after `since`: the sensor
    # needs each id once, whatever the number of events about it.
    latest: dict[str, InboxEvent] = {}
    cursor = 0
    while page := inbox.read_after(cursor, 500, endpoint=endpoint):
        for event in page:
            if event.received_at >= since:
                latest.pop(event.recording_id, None)
                latest[event.recording_id] = event
        cursor = page[-1].seq
    return list(latest.values())


def replay(inbox: Inbox, endpoint: str, *, since: datetime | None = None, ids: Iterable[str] = (),
           batch: str | None = None) -> Replayed:
    """Append, for `endpoint`, one new event per recording: those stored since `since`
    (their latest event's type and payload) and the given `ids`. `batch` makes the message
    ids unique (a fresh one per call, so replaying twice queues twice)."""
    batch = batch or uuid.uuid4().hex[:12]
    queued = [InboxEvent(endpoint=endpoint, message_id=f"replay_{batch}_{e.message_id}", event_type=e.event_type,
                         recording_id=e.recording_id, payload=e.payload)
              for e in (_stored_since(inbox, endpoint, since) if since is not None else [])]
    known = {e.recording_id for e in queued}
    for rid in dict.fromkeys(i.strip() for i in ids if i.strip()):
        if rid not in known:
            queued.append(InboxEvent(endpoint=endpoint, message_id=f"replay_{batch}_{rid}", event_type=REPLAY_EVENT_TYPE,
                                     recording_id=rid, payload={"recordingId": rid, "eventType": REPLAY_EVENT_TYPE}))
    seqs: list[int] = []
    for event in queued:
        try:
            seqs.append(inbox.append(event).seq)
        except InboxFull:
            return Replayed(tuple(seqs), tuple(e.recording_id for e in queued[: len(seqs)]), full=True)
    return Replayed(tuple(seqs), tuple(e.recording_id for e in queued))


def _since(value: str) -> datetime:
    try:
        t = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `python -m siro_assets.webhooks replay`."""
    from .__main__ import add_project_arguments

    p = argparse.ArgumentParser(prog="python -m siro_assets.webhooks replay",
                                description="Re-queue stored webhook events (or recording ids) so the webhook "
                                            "sensor processes them again.")
    p.add_argument("--endpoint", required=True, metavar="KEY_PREFIX", help="the instance's key prefix, e.g. siro")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--since", type=_since, metavar="ISO_TIME",
                      help="every recording with an event received at or after this time (UTC if no offset)")
    what.add_argument("--ids", metavar="ID,ID,...", help="these recording ids, stored or not")
    add_project_arguments(p)
    return p


def main(argv: list[str]) -> int:
    """Replay; exit 2 when the endpoint or its inbox is unknown, 1 when the inbox filled up."""
    from .__main__ import StartupError, plan_inbox
    from .location import MissingDsnError

    args = build_parser().parse_args(argv)
    try:
        location = plan_inbox(args, args.endpoint)
        inbox = location.open()
    except (StartupError, MissingDsnError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with inbox:
        done = replay(inbox, args.endpoint, since=args.since, ids=(args.ids or "").split(","))
    span = f" (seq {done.seqs[0]}..{done.seqs[-1]})" if done.seqs else ""
    print(f"re-queued {len(done.seqs)} recording(s) on /webhooks/{args.endpoint}{span} into {location.describe()}; "
          "the webhook sensor picks them up at its next tick", flush=True)
    if done.full:
        print("error: the inbox is full; the rest were not re-queued (run again once the sensor has drained it)",
              file=sys.stderr)
        return 1
    return 0
