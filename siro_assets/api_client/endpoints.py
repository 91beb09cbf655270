"""The single-resource GET endpoints, each written once for both clients.

Like `.paging.PageWalk` this does no I/O: an endpoint is the request to send (path,
params, the body shape to check) and how the checked body becomes the result. The sync
and async clients only send it (`ClientCore._get` with or without ``await``), so their
endpoint methods cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypedDict, TypeVar

from .core import CALLER_IDENTITY_PATH, recording_path
from .models import CallerIdentity, Recording, SummarySection
from .query import enrichment_params
from .shapes import ShapeCheck, list_of_objects_shape, object_shape, recording_shape, unwrap_list, unwrap_recording

__all__ = ["Call", "EnrichmentFlags", "caller_identity", "recording", "recording_json", "summaries"]

T = TypeVar("T")


class EnrichmentFlags(TypedDict, total=False):
    """The ``show*`` flags of ``GET /v1/core/recordings/{id}`` (all default to false)."""

    show_crm_links: bool
    show_summary: bool
    show_entity_extractions: bool
    show_evaluation_score: bool
    show_followups: bool


@dataclass(frozen=True)
class Call(Generic[T]):
    """One GET: what to ask for, the shape its body must have, and the result it makes."""

    path: str
    shape: ShapeCheck
    result: Callable[[Any], T]
    params: dict[str, str] = field(default_factory=dict)


def caller_identity() -> Call[CallerIdentity]:
    """``GET /v1/core/auth/caller-identity``: the organization and token in use."""
    return Call(CALLER_IDENTITY_PATH, object_shape, CallerIdentity.model_validate)


def recording(recording_id: str, **flags: bool) -> Call[Recording]:
    """``GET /v1/core/recordings/{id}`` as a typed ``Recording``."""
    return Call(recording_path(recording_id), recording_shape,
                lambda parsed: Recording.model_validate(unwrap_recording(parsed)), enrichment_params(**flags))


def recording_json(recording_id: str, **flags: bool) -> Call[dict[str, Any]]:
    """``GET /v1/core/recordings/{id}`` as the API's JSON object (unknown fields kept)."""
    return Call(recording_path(recording_id), recording_shape, unwrap_recording, enrichment_params(**flags))


def summaries(recording_id: str) -> Call[list[SummarySection]]:
    """``GET /v1/core/recordings/{id}/summaries`` (``[]`` for a recording without any)."""
    return Call(recording_path(recording_id, "/summaries"), list_of_objects_shape,
                lambda parsed: [SummarySection.model_validate(item) for item in unwrap_list(parsed)])
