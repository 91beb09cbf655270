"""What the webhook inbox tests share: a settable clock and an event to append."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from siro_assets.webhooks.inbox import InboxEvent

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


class Clock:
    """`now` for an inbox: `t`, moved by the test."""

    def __init__(self, t: datetime = T0) -> None:
        self.t = t

    def __call__(self) -> datetime:
        return self.t


def inbox_event(message_id: str, recording_id: str = "rec_1", *, endpoint: str = "siro",
                kind: str = "recordingProcessed", **payload: Any) -> InboxEvent:
    """An event of type `integrations.<kind>`; its payload names the recording and the type, plus `payload`."""
    event_type = f"integrations.{kind}"
    return InboxEvent(endpoint=endpoint, message_id=message_id, event_type=event_type, recording_id=recording_id,
                      payload={"recordingId": recording_id, "eventType": event_type, **payload})


@pytest.fixture
def clock() -> Clock:
    """A clock at `T0`."""
    return Clock(T0)
