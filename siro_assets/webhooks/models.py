"""The webhook payload, from Siro's webhooks OpenAPI (`RecordingEventWebhookPayload`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from ..api_client.models import Crm

__all__ = ["EVENT_TYPES", "RecordingEvent"]

#: The event types Siro documents; others are stored too (the schema says only "string"),
#: so a new type is never refused into a retry loop.
EVENT_TYPES = ("integrations.recordingProcessed", "integrations.recordingLinked")


class RecordingEvent(BaseModel):
    """`{recordingId, siroUserId, recordingProcessed, recordingLinked, eventType, crm}`.

    Strict JSON types (a `"true"` string is not a boolean); unknown fields are kept so a
    field Siro adds later does not turn every delivery into a 400. `crm` has the API's
    shape, so it reuses the client's model.
    """

    model_config = ConfigDict(extra="allow")

    recordingId: StrictStr = Field(min_length=1)
    siroUserId: StrictStr | None = None
    recordingProcessed: StrictBool
    recordingLinked: StrictBool
    eventType: StrictStr = Field(min_length=1)
    crm: Crm | None = None
