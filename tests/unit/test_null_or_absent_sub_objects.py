"""A real server may send an unlinked CRM sub-object as ``null`` or leave it out; the
published schema allows only the latter, the simulator sends only the latter, and the
client and pipeline must treat both the same.

Each variant goes the way a real page goes: an HTTP body read by the async client (as
the raw asset reads it), staged from ``page.body``, swapped into ``siro.recordings`` and
derived into every table; then the two warehouses are compared row for row.
"""

from __future__ import annotations

import asyncio
import json
import math
from datetime import date, datetime, timezone

import duckdb
import httpx
import pytest

from siro_assets.warehouse.connection import DEFAULT_SCHEMA, use_schema
from siro_assets.api_client import AsyncSiroClient, RequestPacer, RetryPolicy, SiroClient, created_window
from siro_assets.transforms import DERIVED_TABLES, rebuild_partitions
from siro_assets.warehouse.staging import RecordingsStage, swap_partitions

from tests.raw_payloads import recording, ref

DAY = date(2026, 1, 5)
WINDOW = (datetime(2026, 1, 5, tzinfo=timezone.utc), datetime(2026, 1, 6, tzinfo=timezone.utc))
SUB_OBJECTS = ("engagement", "opportunity", "account", "lead")
EVERY_MODEL = [
    {"crmModelName": model, "crmFieldName": "Field__c"}
    for model in ("Engagement", "Opportunity", "Account", "Lead", "Contact", "User")
]


def linked_recording(rid: str, hour: int, unlinked: tuple[str, ...], how: str) -> dict:
    """A linked recording whose ``unlinked`` sub-objects are sent as null or left out."""
    crm = {
        "integrationConnectionId": "ic",
        "users": [ref("su", "U")],
        "contacts": [ref("sc", "C")],
        **{key: ref(f"s_{key}", key.upper()) for key in SUB_OBJECTS if key not in unlinked},
    }
    if how == "null":
        crm.update(dict.fromkeys(unlinked))
    return recording(
        rid, DAY, hour=hour, crm=crm, latitude=40.7, longitude=-74.0,
        entityExtractions=[{"name": "budget", "value": 100, "mappings": EVERY_MODEL}],
    )


def page_records(how: str) -> list[dict]:
    cases = [(), *((key,) for key in SUB_OBJECTS), SUB_OBJECTS]
    return [linked_recording(f"r{n}", 8 + n, unlinked, how) for n, unlinked in enumerate(cases)]


def serve(records: list[dict]) -> httpx.MockTransport:
    body = json.dumps({"data": records, "cursor": None}).encode()
    return httpx.MockTransport(lambda request: httpx.Response(200, content=body))


def client_kwargs() -> dict:
    return {"pacer": RequestPacer(math.inf), "retry": RetryPolicy(max_attempts=1)}


def warehouse_rows(records: list[dict]) -> dict[str, list[tuple]]:
    """Every typed raw column and every derived table after ingesting ``records``."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    use_schema(con, DEFAULT_SCHEMA, create=True)

    async def ingest(stage: RecordingsStage) -> None:
        async with AsyncSiroClient("T", "https://siro.test", transport=serve(records), **client_kwargs()) as c:
            async for page in c.aiter_recording_pages(created_window(*WINDOW, show_crm_links=True)):
                stage.add_page(page.body)

    with RecordingsStage() as stage:
        asyncio.run(ingest(stage))
        stage.finalize([DAY])
        swap_partitions(con, stage, [DAY])
    out = {
        # payload keeps the body as sent, so it differs by design; everything typed must not.
        "siro.recordings": con.execute(
            "SELECT * EXCLUDE (payload, ingested_at) FROM siro.recordings ORDER BY id"
        ).fetchall()
    }
    for table in DERIVED_TABLES:
        rebuild_partitions(con, table, [DAY])
        out[table.name] = con.execute(f"SELECT * FROM {table.name} ORDER BY ALL").fetchall()
    con.close()
    return out


def test_the_two_pages_really_differ_only_in_null_versus_absent() -> None:
    nulls, absents = page_records("null"), page_records("absent")
    assert nulls != absents
    assert any(r["crm"].get("engagement", "missing") is None for r in nulls)
    assert not any(v is None for r in absents for v in r["crm"].values())


def test_null_and_absent_sub_objects_stage_and_derive_identically() -> None:
    with_nulls = warehouse_rows(page_records("null"))
    without = warehouse_rows(page_records("absent"))
    assert with_nulls == without
    # And the rows say "not linked" for exactly the missing objects, not something else.
    crm_rows = with_nulls["recording_crm_links"]
    assert {(r[1], r[3]) for r in crm_rows if r[3] in SUB_OBJECTS} == {
        (f"r{n}", key)
        for n, unlinked in enumerate([(), *((k,) for k in SUB_OBJECTS), SUB_OBJECTS])
        for key in SUB_OBJECTS
        if key not in unlinked
    }
    plan = with_nulls["crm_writeback_plan"]
    assert plan and len({row[-2] for row in plan}) > 1  # more than one plan_status occurs


@pytest.mark.parametrize("key", SUB_OBJECTS)
def test_the_client_parses_null_and_absent_into_the_same_model(key: str) -> None:
    parsed = {}
    for how in ("null", "absent"):
        records = [linked_recording("r", 10, (key,), how)]
        with SiroClient("T", "https://siro.test", transport=serve(records), **client_kwargs()) as c:
            (rec,) = c.iter_recordings(created_window(*WINDOW, show_crm_links=True))
        assert getattr(rec.crm, key) is None
        parsed[how] = rec.crm
    assert parsed["null"] == parsed["absent"]
