"""Staging raw pages and swapping partitions: no Dagster, no HTTP, a real DuckDB file."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import duckdb
import pytest

from siro_assets.warehouse.connection import duckdb_connection, open_duckdb
from siro_assets.warehouse.staging import RecordingsStage, StagingValidationError, swap_partitions

D1, D2 = date(2026, 1, 1), date(2026, 1, 2)


def rec(rid: str, created: str, updated: str | None = None, **extra) -> dict:
    return {
        "id": rid,
        "organizationId": "org",
        "userId": "u1",
        "title": "t",
        "durationInMilliseconds": 1000,
        "latitude": 1.5,
        "longitude": -2.5,
        "result": "OPEN",
        "createdAt": created,
        "updatedAt": updated or created,
        "deleted": False,
        "links": {"web": {"self": f"https://app/{rid}"}},
        **extra,
    }


def page(records: list[dict], cursor: str | None = None) -> bytes:
    return json.dumps({"data": records, "cursor": cursor}).encode()


def load(path, pages_by_day: dict[date, list[bytes]], partitions: list[date], **swap_options):
    with RecordingsStage() as stage:
        for day, pages in pages_by_day.items():
            for body in pages:
                stage.add_page(body)
        summary = stage.finalize(partitions)
        with duckdb_connection(path) as con:
            swap_partitions(con, stage, partitions, **swap_options)
    return summary


def rows(path, sql="SELECT id, partition_date FROM siro.recordings ORDER BY id"):
    with duckdb_connection(path, read_only=True) as con:
        return con.execute(sql).fetchall()


def test_midnight_boundaries_land_in_their_own_day(tmp_path):
    db = tmp_path / "w.duckdb"
    load(
        db,
        {D1: [page([rec("a", "2026-01-01T00:00:00.000Z"), rec("b", "2026-01-01T23:59:59.999Z")])],
         D2: [page([rec("c", "2026-01-02T00:00:00.000Z")])]},
        [D1, D2],
    )
    assert rows(db) == [("a", D1), ("b", D1), ("c", D2)]


def test_duplicates_across_pages_keep_the_newest_version(tmp_path):
    db = tmp_path / "w.duckdb"
    summary = load(
        db,
        {D1: [page([rec("a", "2026-01-01T01:00:00.000Z", title="old")], "c1"),
              page([rec("a", "2026-01-01T01:00:00.000Z", "2026-01-01T05:00:00.000Z", title="new")])]},
        [D1],
    )
    assert summary.duplicates_dropped == 1
    assert rows(db, "SELECT id, title FROM siro.recordings") == [("a", "new")]


def test_unknown_fields_and_every_value_shape_survive_in_payload(tmp_path):
    db = tmp_path / "w.duckdb"
    values = ["text", 3, 2.5, True, None, ["a", "b"], ["a", 1, False, None]]
    extractions = [{"name": f"f{i}", "value": v, "mappings": None} for i, v in enumerate(values)]
    original = rec("a", "2026-01-01T01:00:00.000Z", entityExtractions=extractions,
                   brandNewField={"nested": ["ü", "日本"]}, crm=None)
    load(db, {D1: [page([original])]}, [D1])
    (payload,) = rows(db, "SELECT payload FROM siro.recordings")[0]
    assert json.loads(payload) == original


def test_records_outside_the_requested_days_are_not_written(tmp_path):
    db = tmp_path / "w.duckdb"
    summary = load(db, {D1: [page([rec("a", "2026-01-01T01:00:00.000Z"),
                                   rec("z", "2026-01-05T01:00:00.000Z")])]}, [D1])
    assert summary.outside_window == 1
    assert rows(db) == [("a", D1)]


def test_a_record_without_created_at_is_refused_not_dropped(tmp_path):
    broken = rec("a", "2026-01-01T01:00:00.000Z")
    del broken["createdAt"]
    with RecordingsStage() as stage:
        stage.add_page(page([broken]))
        with pytest.raises(StagingValidationError, match="createdAt"):
            stage.finalize([D1])


def test_failed_swap_rolls_back_and_keeps_previous_rows(tmp_path, monkeypatch):
    db = tmp_path / "w.duckdb"
    load(db, {D1: [page([rec("a", "2026-01-01T01:00:00.000Z")])]}, [D1])
    before = rows(db)

    with RecordingsStage() as stage:
        stage.add_page(page([rec("a", "2026-01-01T01:00:00.000Z", "2026-01-01T03:00:00.000Z"),
                             rec("b", "2026-01-01T02:00:00.000Z")]))
        stage.finalize([D1])
        con = open_duckdb(db)
        real_execute = con.execute

        class Exploding:
            """Fails the INSERT after the DELETE already ran inside the transaction."""

            def execute(self, sql, *args):
                if sql.lstrip().startswith("INSERT INTO recordings"):
                    raise duckdb.IOException("disk full (simulated)")
                return real_execute(sql, *args)

        with pytest.raises(duckdb.IOException):
            swap_partitions(Exploding(), stage, [D1])
        con.close()
    assert rows(db) == before


def test_other_partitions_are_untouched_by_a_swap(tmp_path):
    db = tmp_path / "w.duckdb"
    load(db, {D1: [page([rec("a", "2026-01-01T01:00:00.000Z")])],
              D2: [page([rec("b", "2026-01-02T01:00:00.000Z")])]}, [D1, D2])
    load(db, {D1: [page([rec("c", "2026-01-01T03:00:00.000Z")])]}, [D1], allow_removals=True)
    assert rows(db) == [("b", D2), ("c", D1)]


@pytest.mark.parametrize(
    "field, bad_value",
    [
        ("deleted", "not-a-boolean"),
        ("rootDataPurgedAt", "last tuesday"),
        ("updatedAt", 12345),
        ("crm", "linked"),
        ("summary", "a summary as a plain string"),
        ("entityExtractions", {"name": "x"}),
    ],
)
def test_a_value_of_the_wrong_type_fails_loudly_instead_of_becoming_null(field, bad_value):
    broken = rec("a", "2026-01-01T01:00:00.000Z", **{field: bad_value})
    with RecordingsStage() as stage:
        stage.add_page(page([broken, rec("b", "2026-01-01T02:00:00.000Z")]))
        with pytest.raises(StagingValidationError, match=field) as error:
            stage.finalize([D1])
    assert "'a'" in str(error.value) and "'b'" not in str(error.value)


def test_explicit_nulls_and_absent_fields_are_not_type_errors(tmp_path):
    db = tmp_path / "w.duckdb"
    nulls = rec("a", "2026-01-01T01:00:00.000Z", crm=None, summary=None, deletedAt=None,
                rootDataPurgedAt=None, entityExtractions=None)
    absent = rec("b", "2026-01-01T02:00:00.000Z")
    for key in ("deleted", "updatedAt"):
        absent.pop(key)
    load(db, {D1: [page([nulls, absent])]}, [D1])
    assert rows(db) == [("a", D1), ("b", D1)]


def test_two_versions_in_one_page_keep_the_newest_and_only_one(tmp_path):
    db = tmp_path / "w.duckdb"
    created = "2026-01-01T01:00:00.000Z"
    summary = load(db, {D1: [page([
        rec("a", created, "2026-01-01T09:00:00.000Z", title="newest"),
        rec("a", created, "2026-01-01T03:00:00.000Z", title="older"),
        rec("a", created, "2026-01-01T09:00:00.000Z", title="newest, seen last"),
    ])]}, [D1])
    assert summary.duplicates_dropped == 2
    assert rows(db, "SELECT id, title FROM siro.recordings") == [("a", "newest, seen last")]


_REF = {"id": "s1", "externalId": "x1"}
_EXTRACTION = {"name": "budget", "value": 5, "mappings": [{"crmModelName": "Deal", "crmFieldName": "amount"}]}


@pytest.mark.parametrize(
    "path, fields",
    [
        ("crm.users", {"crm": {"users": {"id": "u1", "externalId": "x"}}}),
        ("crm.engagement", {"crm": {"engagement": "eng_1"}}),
        ("crm.contacts", {"crm": {"contacts": "c1,c2"}}),
        ("crm.lead", {"crm": {"lead": [_REF]}}),
        ("crm.users[*]", {"crm": {"users": [_REF, "u2"]}}),
        ("crm.contacts[*]", {"crm": {"contacts": [7]}}),
        ("summary[*]", {"summary": [{"id": "s", "name": "Next steps", "content": "c"}, "a plain string"]}),
        ("entityExtractions[*]", {"entityExtractions": [_EXTRACTION, "budget: 5"]}),
        ("entityExtractions[*].mappings", {"entityExtractions": [
            {**_EXTRACTION, "mappings": {"crmModelName": "Deal", "crmFieldName": "amount"}}]}),
        ("entityExtractions[*].mappings[*]", {"entityExtractions": [{**_EXTRACTION, "mappings": ["Deal.amount"]}]}),
        ("durationInMilliseconds", {"durationInMilliseconds": "three minutes"}),
    ],
)
def test_a_nested_value_of_the_wrong_type_refuses_the_partition(path, fields):
    broken = rec("a", "2026-01-01T01:00:00.000Z", **fields)
    with RecordingsStage() as stage:
        stage.add_page(page([broken, rec("b", "2026-01-01T02:00:00.000Z")]))
        with pytest.raises(StagingValidationError) as error:
            stage.finalize([D1])
    message = str(error.value)
    assert f"{path}: 1 recording(s), e.g. ['a']" in message
    assert "'b'" not in message


def test_null_and_empty_nested_values_are_not_type_errors(tmp_path):
    db = tmp_path / "w.duckdb"
    harmless = rec(
        "a", "2026-01-01T01:00:00.000Z",
        crm={"integrationConnectionId": None, "users": [None, {}], "contacts": None, "engagement": {},
             "lead": None},
        summary=[None, {}, {"id": "s", "name": None, "content": None}],
        entityExtractions=[None, {}, {"name": "n", "value": None, "mappings": None},
                           {"name": "m", "value": 1, "mappings": [None, {}]}],
        durationInMilliseconds="60000",
    )
    load(db, {D1: [page([harmless])]}, [D1])
    assert rows(db, "SELECT id, duration_ms, len(summary) FROM siro.recordings") == [("a", 60000.0, 3)]
