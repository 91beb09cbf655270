"""Query parameters for ``GET /v1/core/recordings``."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from .timestamps import MS, ceil_ms, format_ts, require_aware

__all__ = ["RecordingsQuery", "created_window", "bool_param", "enrichment_params"]


def bool_param(value: bool) -> str:
    """Render a boolean the way the API expects it on the wire."""
    return "true" if value else "false"


def enrichment_params(
    *,
    show_crm_links: bool = False,
    show_summary: bool = False,
    show_entity_extractions: bool = False,
    show_evaluation_score: bool = False,
    show_followups: bool = False,
) -> dict[str, str]:
    """The ``show*`` flags, always sent explicitly as ``"true"``/``"false"``."""
    return {
        "showCrmLinks": bool_param(show_crm_links),
        "showSummary": bool_param(show_summary),
        "showEntityExtractions": bool_param(show_entity_extractions),
        "showEvaluationScore": bool_param(show_evaluation_score),
        "showFollowups": bool_param(show_followups),
    }


_TIME_FILTERS = (
    ("created_gt", "createdAt:gt"),
    ("created_lt", "createdAt:lt"),
    ("updated_gte", "updatedAt:gte"),
    ("updated_gt", "updatedAt:gt"),
    ("updated_lt", "updatedAt:lt"),
    ("updated_lte", "updatedAt:lte"),
)
_BOOL_FILTERS = (
    ("is_processing_done", "isProcessingDone"),
    ("is_entity_extraction_done", "isEntityExtractionDone"),
    ("is_summary_done", "isSummaryDone"),
)


@dataclass(frozen=True)
class RecordingsQuery:
    """Filters, enrichment flags and page size for listing recordings.

    Time bounds are tz-aware datetimes sent at millisecond precision (sub-ms digits
    are truncated). Note the API semantics: ``createdAt:gt``/``:lt`` are both
    exclusive; use ``created_window`` for a half-open ``[start, end)`` window.
    ``page_size`` is a request, not a promise: the server may return fewer rows.
    """

    created_gt: datetime | None = None
    created_lt: datetime | None = None
    updated_gte: datetime | None = None
    updated_gt: datetime | None = None
    updated_lt: datetime | None = None
    updated_lte: datetime | None = None
    is_processing_done: bool | None = None
    is_entity_extraction_done: bool | None = None
    is_summary_done: bool | None = None
    show_crm_links: bool = False
    show_summary: bool = False
    show_entity_extractions: bool = False
    show_evaluation_score: bool = False
    show_followups: bool = False
    page_size: int = 100

    def __post_init__(self) -> None:
        for attr, _ in _TIME_FILTERS:
            value = getattr(self, attr)
            if value is not None:
                require_aware(value, attr)
        if isinstance(self.page_size, bool) or not isinstance(self.page_size, int) or self.page_size < 1:
            raise ValueError(f"page_size must be a positive int, got {self.page_size!r}")

    def to_params(self) -> dict[str, str]:
        """Wire parameters (all strings), without ``cursor``."""
        params: dict[str, str] = {}
        for attr, wire in _TIME_FILTERS:
            value = getattr(self, attr)
            if value is not None:
                params[wire] = format_ts(value)
        for attr, wire in _BOOL_FILTERS:
            value = getattr(self, attr)
            if value is not None:
                params[wire] = bool_param(value)
        params.update(
            enrichment_params(
                show_crm_links=self.show_crm_links,
                show_summary=self.show_summary,
                show_entity_extractions=self.show_entity_extractions,
                show_evaluation_score=self.show_evaluation_score,
                show_followups=self.show_followups,
            )
        )
        params["pageSize"] = str(self.page_size)
        return params

    def replace(self, **changes) -> RecordingsQuery:
        """A copy with some fields changed."""
        return replace(self, **changes)


def created_window(start: datetime, end: datetime, **kwargs) -> RecordingsQuery:
    """Query for recordings created in the half-open window ``[start, end)``.

    Both createdAt bounds of the API are exclusive and timestamps have millisecond
    precision, so ``created_gt = start - 1 ms`` and ``created_lt = end``. A recording
    created exactly at ``end`` belongs to the next window, never to both.
    Extra keyword arguments are passed to ``RecordingsQuery``.
    """
    require_aware(start, "start")
    require_aware(end, "end")
    if end <= start:
        raise ValueError(f"created_window needs end > start (got {start.isoformat()} .. {end.isoformat()})")
    for key in ("created_gt", "created_lt"):
        if key in kwargs:
            raise TypeError(f"created_window sets {key} itself")
    # Round sub-ms bounds up: a ms-precision createdAt t satisfies t >= start exactly
    # when t >= ceil_ms(start), and the same for end, so the window stays exact.
    return RecordingsQuery(created_gt=ceil_ms(start) - MS, created_lt=ceil_ms(end), **kwargs)
