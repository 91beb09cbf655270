"""A simulated recording as the API returns it at one moment, with the asked-for blocks."""

from __future__ import annotations

from typing import Any, Callable, Iterable

from .clock import format_ms
from .timeline import BaseRecording

__all__ = ["ENRICHMENTS", "FollowupDetail", "recording_payload"]

#: Enrichment blocks, keyed by the payload key.
ENRICHMENTS = ("crm", "summary", "entityExtractions", "evaluationScore", "followups")

#: Expands a slim followup into the full object: ``(recording, followup, processed_ms)``.
FollowupDetail = Callable[[BaseRecording, dict[str, Any], int], dict[str, Any]]


def recording_payload(
    r: BaseRecording,
    now_ms: int,
    enrich: Iterable[str],
    *,
    organization_id: str,
    followup_detail: FollowupDetail | None = None,
) -> dict[str, Any]:
    """The API object for ``r`` as of ``now_ms``, with the requested enrichment blocks.

    ``followup_detail`` given: followups are the full objects GET-by-id returns; otherwise the
    slim ``{id, score}`` the list returns. Returned data is a copy the caller may mutate.
    """
    now_ms = int(now_ms)
    ev = {}
    for t, k in r.events:
        if t > now_ms:
            break
        ev.setdefault(k, t)
        if k == "relinked":
            ev["relinked"] = t
    purged = ev.get("purged")
    deleted = ev.get("deleted")
    processed = "processed" in ev
    obj: dict[str, Any] = {
        "id": r.id,
        "organizationId": organization_id,
        "userId": r.user_id,
        "title": "" if (purged is not None and r.purged_title_blank) else r.title,
        "durationInMilliseconds": r.duration,
        "latitude": r.lat,
        "longitude": r.lon,
        "result": r.result,
        "createdAt": format_ms(r.created),
        "updatedAt": format_ms(r.updated_ms(now_ms)),
        "rootDataPurgedAt": format_ms(purged) if purged is not None else None,
        "deleted": deleted is not None,
        "deletedAt": format_ms(deleted) if deleted is not None else None,
        "links": {"web": {"self": f"https://app.siro.ai/recordings/{r.id}"}},
        "isProcessingDone": processed,
        "isEntityExtractionDone": "extracted" in ev,
        "isSummaryDone": "summarized" in ev,
    }
    enrich = set(enrich)
    if "crm" in enrich:
        crm = None
        if "relinked" in ev:
            crm = r.crm_relinked
        elif "linked" in ev:
            crm = r.crm
        obj["crm"] = _copy(crm)
    if "summary" in enrich:
        obj["summary"] = _copy(r.summary) if ("summarized" in ev and purged is None) else []
    if "entityExtractions" in enrich:
        obj["entityExtractions"] = _copy(r.extractions) if ("extracted" in ev and purged is None) else []
    if "evaluationScore" in enrich and processed and r.evaluation_score is not None:
        obj["evaluationScore"] = r.evaluation_score
    if "followups" in enrich:
        if not processed:
            obj["followups"] = []
        elif followup_detail is not None:
            obj["followups"] = [followup_detail(r, f, ev["processed"]) for f in r.followups]
        else:
            obj["followups"] = [dict(f) for f in r.followups]
    return obj


def _copy(v: Any) -> Any:
    """Deep-copy JSON-ish data so callers can't mutate the cached world."""
    if isinstance(v, dict):
        return {k: _copy(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_copy(x) for x in v]
    return v
