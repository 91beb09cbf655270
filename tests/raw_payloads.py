"""Hand-written API recordings and a loader that puts them into `siro.recordings`.

The loader goes through the real staging path (RecordingsStage + swap_partitions), so
derived-table tests see exactly the typed nested columns the raw asset writes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import date

import duckdb

from siro_assets.warehouse.staging import RecordingsStage, swap_partitions


def recording(rid: str, day: date, *, hour: int = 10, **fields) -> dict:
    """A full API recording created on `day`; `fields` override or add camelCase keys.

    Pass `drop=[...]` to remove keys entirely (an absent key, not a null one).
    """
    created = f"{day.isoformat()}T{hour:02d}:00:00.000Z"
    payload = {
        "id": rid,
        "organizationId": "org_1",
        "userId": "user_1",
        "title": f"Visit {rid}",
        "durationInMilliseconds": 60_000,
        "result": "OPEN",
        "createdAt": created,
        "updatedAt": created,
        "rootDataPurgedAt": None,
        "deleted": False,
        "deletedAt": None,
        "links": {"web": {"self": f"https://app.siro.ai/recordings/{rid}"}},
        "isProcessingDone": True,
        "isEntityExtractionDone": True,
        "isSummaryDone": True,
        "crm": None,
        "summary": [],
        "entityExtractions": [],
    }
    for key in fields.pop("drop", ()):
        payload.pop(key, None)
    payload.update(fields)
    return payload


def ref(siro_id: str, external_id: str) -> dict:
    """A CRM object reference as the API sends it."""
    return {"id": siro_id, "externalId": external_id}


def load_raw(
    con: duckdb.DuckDBPyConnection, records: Iterable[dict], partitions: Sequence[date]
) -> int:
    """Replace `partitions` of `siro.recordings` with `records`, as one API page.

    Tests set up whatever state they need, so ids missing from `records` are removed
    (`allow_removals`), as an operator's purge would.
    """
    partitions = list(partitions)
    with RecordingsStage() as stage:
        body = json.dumps({"data": list(records), "cursor": None}, ensure_ascii=False)
        stage.add_page(body)
        stage.finalize(partitions)
        return swap_partitions(con, stage, partitions, allow_removals=True)
