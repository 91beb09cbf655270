"""Typed pydantic v2 models for Siro API payloads.

Every model keeps unknown fields (``extra="allow"``) because Siro adds fields
without notice and a pipeline must neither crash nor silently drop them. Python
attribute names are snake_case; the camelCase wire names are aliases, and both are
accepted on input. ``model_dump(mode="json", by_alias=True, exclude_unset=True)``
reproduces the original payload, timestamps included.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer
from pydantic.alias_generators import to_camel

from .timestamps import format_ts, parse_ts

__all__ = [
    "SiroModel",
    "Timestamp",
    "KNOWN_RESULTS",
    "ExtractionScalar",
    "ExtractionValue",
    "CrmObjectRef",
    "Crm",
    "SummarySection",
    "CrmFieldMapping",
    "EntityExtraction",
    "WebLinks",
    "RecordingLinks",
    "Recording",
    "CallerIdentity",
]


def _to_datetime(value: Any) -> Any:
    # Route strings through parse_ts so a zone-less timestamp is rejected instead of
    # becoming a naive datetime (pydantic's own parser would accept it).
    return parse_ts(value) if isinstance(value, str) else value


def _check_aware(value: Any) -> Any:
    if isinstance(value, datetime) and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError("timestamp must be timezone-aware")
    return value


Timestamp = Annotated[
    datetime,
    BeforeValidator(_check_aware),
    BeforeValidator(_to_datetime),
    PlainSerializer(format_ts, return_type=str, when_used="json"),
]
"""A tz-aware UTC datetime that serializes back to the API's ``...sssZ`` form in JSON mode."""

KNOWN_RESULTS = frozenset({"OPEN", "WON", "LOST"})
"""Documented values of ``Recording.result``; others are kept as plain strings."""

# Smart-mode unions pick the exact JSON type, so 1 stays int, True stays bool and
# 1.0 stays float (a plain ``float | int`` or lax union would coerce them).
ExtractionScalar = Union[str, bool, int, float, None]
ExtractionValue = Union[ExtractionScalar, list[ExtractionScalar]]


class SiroModel(BaseModel):
    """Base for all Siro payload models: camelCase aliases, unknown fields kept."""

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
        alias_generator=to_camel,
    )


class CrmObjectRef(SiroModel):
    """A linked CRM object: Siro's internal ``id`` and the CRM's ``external_id``."""

    id: str
    external_id: str


class Crm(SiroModel):
    """The ``crm`` block: ids of the CRM records the recording is linked to."""

    integration_connection_id: str
    users: list[CrmObjectRef] | None = None
    engagement: CrmObjectRef | None = None
    opportunity: CrmObjectRef | None = None
    contacts: list[CrmObjectRef] | None = None
    account: CrmObjectRef | None = None
    lead: CrmObjectRef | None = None


class SummarySection(SiroModel):
    """One section of a recording's AI summary."""

    id: str
    name: str
    content: str


class CrmFieldMapping(SiroModel):
    """Where an extracted value should be written in the CRM."""

    crm_model_name: str
    crm_field_name: str


class EntityExtraction(SiroModel):
    """One extracted value; ``value`` keeps its JSON type, ``mappings`` may be null."""

    name: str
    value: Annotated[ExtractionValue, Field(union_mode="smart")] = None
    mappings: list[CrmFieldMapping] | None = None


class WebLinks(SiroModel):
    """``links.web``: the recording's page in the Siro web app."""

    self_url: str = Field(alias="self")


class RecordingLinks(SiroModel):
    """``links`` block of a recording."""

    web: WebLinks


class Recording(SiroModel):
    """A recording as returned by ``/v1/core/recordings`` (list or by id).

    Enrichment blocks (``crm``, ``summary``, ...) are only present when the matching
    ``show*`` flag was sent, so they default to ``None``; ``crm`` is also null until
    the recording has a confirmed CRM link.
    """

    id: str
    organization_id: str
    user_id: str
    title: str
    duration_in_milliseconds: int | float
    latitude: int | float
    longitude: int | float
    result: str
    created_at: Timestamp
    updated_at: Timestamp
    deleted: bool
    links: RecordingLinks

    root_data_purged_at: Timestamp | None = None
    deleted_at: Timestamp | None = None
    is_processing_done: bool | None = None
    is_entity_extraction_done: bool | None = None
    is_summary_done: bool | None = None
    crm: Crm | None = None
    summary: list[SummarySection] | None = None
    entity_extractions: list[EntityExtraction] | None = None
    evaluation_score: int | float | None = None
    # The list endpoint returns slim {id, score} items and the by-id endpoint the full
    # followup payload, so they are kept as plain JSON objects.
    followups: list[dict[str, Any]] | None = None

    @property
    def web_url(self) -> str:
        """The recording's page in the Siro web app."""
        return self.links.web.self_url


class CallerIdentity(SiroModel):
    """``/v1/core/auth/caller-identity``: which organization the token acts for."""

    token_id: str
    token_name: str
    organization_id: str
    authorized_org_group_id: str | None = None
    parent_org_group_token_id: str | None = None
    created_at: Timestamp | None = None
    created_by: str | None = None
