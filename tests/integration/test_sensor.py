"""`recordings_updated_sensor` evaluated against the in-process simulator.

The simulator world is a pure function of its clock, so "time passes between ticks" is
a new resource with a later `simulator_now`; nothing sleeps. The scenario times are
found in the world's own timelines rather than hard-coded.
"""

from __future__ import annotations

import sys

from datetime import date, datetime, timedelta, timezone

import pytest
from dagster import DagsterInstance, Definitions, build_sensor_context

from siro_assets.changes.change_tracking import SensorCursor
from siro_assets.pipeline.resources import SiroApiResource, WarehouseResource
from tests.default_instance import recordings, recordings_job, recordings_updated_sensor
from siro_assets.simulator import World, WorldConfig
from siro_assets.api_client.timestamps import format_ts

from siro_assets.pipeline.automation.dagster_gaps import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from tests.support import sensor_with, simulated_siro

RANGE_START, RANGE_END = PARTITION_RANGE_START_TAG, PARTITION_RANGE_END_TAG
WORLD = World(WorldConfig())  # the same world SimulatedSiroApiResource serves
SCAN_DAYS = [date(2026, 2, 16) + timedelta(days=k) for k in range(14)]


# ---- scenario finders -------------------------------------------------------------------


def _events(day: date):
    for r in WORLD.day(day):
        timeline = WORLD.timeline(r.id)
        yield r.id, timeline[0][0], timeline


def _quiet_around(timeline, t: datetime, minutes: int = 10) -> bool:
    """No other event of the same recording within `minutes` of `t`."""
    return all(abs(u - t) > timedelta(minutes=minutes) for u, _ in timeline if u != t)


def find_late_link(min_days: float = 2.5, max_days: float = 3.5) -> tuple[str, datetime, datetime]:
    """A recording linked ~3 days after it was created: (id, createdAt, linkedAt)."""
    for day in SCAN_DAYS:
        for rid, created, timeline in _events(day):
            for t, kind in timeline:
                if kind == "linked" and timedelta(days=min_days) <= t - created <= timedelta(days=max_days) and _quiet_around(timeline, t):
                    if all(k not in ("deleted", "purged", "relinked") for _, k in timeline) and any(
                        e.get("mappings") for e in WORLD.recording(rid, t)["entityExtractions"]
                    ):
                        return rid, created, t
    raise AssertionError("the simulated world has no late link in the scanned days")


def find_deletion() -> tuple[str, datetime, datetime]:
    """A recording linked and summarized well before it is deleted: (id, createdAt, deletedAt)."""
    for day in SCAN_DAYS:
        for rid, created, timeline in _events(day):
            kinds = dict((k, t) for t, k in reversed(timeline))
            deleted = kinds.get("deleted")
            if deleted is None or "purged" in kinds or not _quiet_around(timeline, deleted):
                continue
            if kinds.get("linked", deleted) < deleted - timedelta(hours=1) and kinds.get("summarized", deleted) < deleted - timedelta(hours=1):
                before = WORLD.recording(rid, deleted - timedelta(minutes=1))
                if before["summary"] and before["crm"] and before["crm"].get("users"):
                    return rid, created, deleted
    raise AssertionError("the simulated world has no linked+summarized deletion in the scanned days")


def find_tie(min_size: int = 3) -> tuple[datetime, list[str]]:
    """A bulk-sync millisecond at which at least `min_size` recordings get their newest updatedAt."""
    for day in SCAN_DAYS:
        stamps: dict[datetime, list[str]] = {}
        for rid, _, timeline in _events(day):
            for t, _ in timeline:
                stamps.setdefault(t, []).append(rid)
        for t, ids in sorted(stamps.items()):
            # The tied recordings must still show `t` a minute later (no later event of theirs).
            ids = [rid for rid in ids if all(not (t < u <= t + timedelta(minutes=2)) for u, _ in WORLD.timeline(rid))]
            if len(set(ids)) >= min_size:
                return t, sorted(set(ids))
    raise AssertionError("the simulated world has no updatedAt tie in the scanned days")


# ---- harness ----------------------------------------------------------------------------


@pytest.fixture
def clients(monkeypatch):
    """Every SiroClient the sensor opens, to count its requests."""
    made = []
    original = SiroApiResource.client

    def recording_client(self, **options):
        client = original(self, **options)
        made.append(client)
        return client

    monkeypatch.setattr(SiroApiResource, "client", recording_client)
    return made


# The sensor `tick` evaluates; a test with other `sensor:` attributes swaps it.
SENSOR = recordings_updated_sensor


def _definitions(siro: SiroApiResource, tmp_path) -> Definitions:
    # The sensor needs its job's partitions to resolve `partition_key` run requests.
    return Definitions(
        assets=[recordings],
        jobs=[recordings_job],
        sensors=[SENSOR],
        resources={"siro_api": siro, "siro_warehouse": WarehouseResource(database=str(tmp_path / "unused.duckdb"))},
    )


def tick(siro: SiroApiResource, cursor: str | None, tmp_path):
    """Evaluate one sensor tick the way the daemon does (run requests resolved)."""
    with DagsterInstance.ephemeral() as instance:
        context = build_sensor_context(
            instance=instance,
            cursor=cursor,
            resources={"siro_api": siro},
            definitions=_definitions(siro, tmp_path),
        )
        return SENSOR.evaluate_tick(context)


def days_of(run_request) -> list[str]:
    """The partition keys a resolved run request covers."""
    if RANGE_START in run_request.tags:
        first = date.fromisoformat(run_request.tags[RANGE_START])
        last = date.fromisoformat(run_request.tags[RANGE_END])
        return [(first + timedelta(days=k)).isoformat() for k in range((last - first).days + 1)]
    return [run_request.partition_key]


def requested_days(result) -> set[str]:
    return {d for rr in result.run_requests or [] for d in days_of(rr)}


# ---- tests ------------------------------------------------------------------------------


def test_no_change_means_no_run_and_exactly_one_request(tmp_path, clients):
    rid, created, linked = find_late_link()
    t0 = linked - timedelta(minutes=30)
    first = tick(simulated_siro(t0), None, tmp_path)  # whatever changed in the first lookback
    clients.clear()
    # Nothing happens in the world between these two ticks (same clock).
    idle = tick(simulated_siro(t0), first.cursor, tmp_path)
    assert not idle.run_requests
    assert idle.skip_message and "No new changes" in idle.skip_message
    assert len(clients) == 1 and clients[0].stats.requests == 1
    assert SensorCursor.from_json(idle.cursor).watermark == SensorCursor.from_json(first.cursor).watermark


def test_first_tick_starts_at_now_minus_lookback(tmp_path):
    rid, created, linked = find_late_link()
    # The link happened 10 minutes ago: outside the default 5-minute lookback, so the
    # first tick (no cursor) does not request it -- history is the backfill's job.
    now = linked + timedelta(minutes=10)
    result = tick(simulated_siro(now), None, tmp_path)
    cursor = SensorCursor.from_json(result.cursor)
    assert format_ts(cursor.since) == format_ts(now - timedelta(minutes=5))
    assert rid not in {r for r, _ in cursor.seen}
    # Idle first ticks neither drift forward nor reach back.
    later = tick(simulated_siro(now), result.cursor, tmp_path)
    assert later.cursor == result.cursor


def test_late_link_requests_its_creation_day_once(tmp_path):
    rid, created, linked = find_late_link()
    assert linked - created >= timedelta(days=2, hours=12)
    before = tick(simulated_siro(linked - timedelta(minutes=1)), None, tmp_path)
    after = tick(simulated_siro(linked + timedelta(seconds=30)), before.cursor, tmp_path)

    day = created.date().isoformat()
    hits = [rr for rr in after.run_requests if day in days_of(rr)]
    assert len(hits) == 1
    key = hits[0].run_key
    assert key.startswith(f"{day}..") and "#" in key
    assert format_ts(linked) <= key.split("@")[1].split("#")[0]
    assert key not in {rr.run_key for rr in before.run_requests or []}
    assert hits[0].tags["dagster/sensor_name"] == "recordings_updated_sensor"

    # The same tick again (daemon restart before the cursor was saved): identical keys,
    # which Dagster's run-key check turns into no new runs.
    again = tick(simulated_siro(linked + timedelta(seconds=30)), before.cursor, tmp_path)
    assert [rr.run_key for rr in again.run_requests] == [rr.run_key for rr in after.run_requests]
    # The next tick after the cursor advanced requests nothing new.
    later = tick(simulated_siro(linked + timedelta(seconds=40)), after.cursor, tmp_path)
    assert day not in requested_days(later)


def test_ties_across_a_page_boundary_are_requested_once(tmp_path, clients):
    t, ids = find_tie(min_size=3)
    cursor = SensorCursor(watermark=t - timedelta(minutes=1)).to_json()
    siro = simulated_siro(t + timedelta(seconds=5), simulator_page_size_cap=2)
    result = tick(siro, cursor, tmp_path)
    assert clients[-1].stats.pages >= 2  # the tie really spans pages
    new = SensorCursor.from_json(result.cursor)
    assert new.watermark >= t
    assert {(rid, t) for rid in ids} <= new.seen
    days = {rid.split("_")[1] for rid in ids}
    assert {f"{d[:4]}-{d[4:6]}-{d[6:]}" for d in days} <= requested_days(result)

    # One minute later nothing new happened to them: inclusive `gte` lists them again,
    # the seen set drops them.
    again = tick(simulated_siro(t + timedelta(seconds=65), simulator_page_size_cap=2), result.cursor, tmp_path)
    again_pairs = SensorCursor.from_json(again.cursor).seen
    assert {(rid, t) for rid in ids} <= again_pairs
    for rr in again.run_requests or []:
        assert rr.run_key not in {r.run_key for r in result.run_requests}


def test_burst_touching_30_partitions_is_a_bounded_set_of_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "SENSOR", sensor_with(max_runs_per_tick=3))
    now = datetime(2026, 3, 10, 12, tzinfo=timezone.utc)
    # The cursor is 26 days old (the daemon was down): every change since then is listed;
    # events land up to 5 days after creation, so ~30 creation days changed.
    cursor = SensorCursor(watermark=now - timedelta(days=26)).to_json()
    result = tick(simulated_siro(now, simulator_page_size_cap=500), cursor, tmp_path)
    days = requested_days(result)
    assert len(days) >= 30
    assert 1 <= len(result.run_requests) <= 3
    assert len({rr.run_key for rr in result.run_requests}) == len(result.run_requests)
    truth_days = {
        p["createdAt"][:10]
        for p in WORLD.recordings(now, created_from=now - timedelta(days=32))
        if p["updatedAt"] >= format_ts(now - timedelta(days=26, minutes=5))
    }
    assert truth_days <= days
    assert SensorCursor.from_json(result.cursor).watermark <= now


def test_failing_api_skips_the_tick_and_keeps_the_cursor(tmp_path):
    rid, created, linked = find_late_link()
    now = linked + timedelta(seconds=30)
    cursor = SensorCursor(watermark=linked - timedelta(minutes=3)).to_json()
    siro = simulated_siro(now, simulator_fault_script=["500"] * 10, max_attempts=2)
    result = tick(siro, cursor, tmp_path)
    assert not result.run_requests
    assert result.skip_message.startswith("Siro API error, cursor kept at watermark")
    assert result.cursor == cursor
    # The next tick (API healthy again) catches up from the same cursor.
    healthy = tick(simulated_siro(now), result.cursor, tmp_path)
    assert created.date().isoformat() in requested_days(healthy)
    assert SensorCursor.from_json(healthy.cursor).watermark >= linked


def test_api_error_text_carries_no_token(tmp_path):
    token = "fake-token-for-skip-reason-check"
    siro = SiroApiResource(token=token, base_url="http://127.0.0.1:9/api", max_attempts=1, initial_backoff_seconds=0)
    result = tick(siro, None, tmp_path)
    assert result.skip_message.startswith("Siro API error")
    assert token not in result.skip_message
    missing = tick(SiroApiResource(), None, tmp_path)
    assert "SIRO_API_TOKEN" in missing.skip_message and missing.cursor is None


def test_garbage_cursor_fails_with_reset_instructions(tmp_path):
    with pytest.raises(Exception, match="dagster sensor cursor"):
        tick(simulated_siro(), "not-a-cursor", tmp_path)


def test_sensor_is_wired_into_the_definitions():
    from siro_assets.definitions import defs

    sensor_def = defs.resolve_sensor_def("recordings_updated_sensor")
    assert sensor_def.job_name == "siro_recordings_job"
    assert sensor_def.minimum_interval_seconds >= 1


# ---- end to end: the sensor's run requests executed against the real assets ------------


def _pipeline_job():
    from siro_assets.definitions import defs

    return defs.resolve_job_def("siro_recordings_job")


def execute(run_request, siro: SiroApiResource, warehouse: WarehouseResource, instance=None):
    """Run a sensor run request in process, the way the daemon would launch it."""
    job = _pipeline_job()
    # Only the partition tags: the run-key / sensor tags mean nothing to an in-process run.
    tags = {k: v for k, v in run_request.tags.items() if k in (RANGE_START, RANGE_END)}
    result = job.execute_in_process(
        partition_key=run_request.partition_key if not tags else None,
        tags=tags,
        resources={"siro_api": siro, "siro_warehouse": warehouse},
        instance=instance,
    )
    assert result.success
    return result


def materialize_day(day: date, siro: SiroApiResource, warehouse: WarehouseResource):
    from dagster import RunRequest

    return execute(RunRequest(partition_key=day.isoformat()), siro, warehouse)


def query(warehouse: WarehouseResource, sql: str, params=None):
    with warehouse.read_connection() as con:
        return con.execute(sql, params or []).fetchall()


def test_late_link_reaches_recording_crm_after_one_tick_and_its_run(tmp_path, warehouse):
    rid, created, linked = find_late_link()
    day = created.date()
    # The day was loaded (nightly schedule / backfill) before the link existed.
    materialize_day(day, simulated_siro(linked - timedelta(minutes=1)), warehouse)
    assert query(warehouse, "SELECT is_linked FROM siro.recording_crm WHERE recording_id = ?", [rid]) == [(False,)]
    plan_sql = "SELECT DISTINCT plan_status FROM siro.crm_writeback_plan WHERE recording_id = ?"
    assert query(warehouse, plan_sql, [rid]) == [("unlinked",)]

    before = tick(simulated_siro(linked - timedelta(minutes=1)), None, tmp_path)
    siro_now = simulated_siro(linked + timedelta(seconds=30))
    after = tick(siro_now, before.cursor, tmp_path)
    (request,) = [rr for rr in after.run_requests if day.isoformat() in days_of(rr)]
    execute(request, siro_now, warehouse)

    row = query(
        warehouse,
        "SELECT is_linked, engagement_external_id, user_external_ids FROM siro.recording_crm WHERE recording_id = ?",
        [rid],
    )
    truth = WORLD.recording(rid, linked)["crm"]
    assert row and row[0][0] is True
    assert row[0][1] == ((truth.get("engagement") or {}).get("externalId"))
    (updated,) = query(warehouse, "SELECT updated_at FROM siro.recordings WHERE id = ?", [rid])[0]
    assert format_ts(updated) == format_ts(linked)
    # The writeback plan saw the link too: nothing for this recording waits on a link now.
    statuses = {status for (status,) in query(warehouse, plan_sql, [rid])}
    assert statuses and "unlinked" not in statuses


def test_deletion_removes_derived_rows(tmp_path, warehouse):
    rid, created, deleted = find_deletion()
    day = created.date()
    materialize_day(day, simulated_siro(deleted - timedelta(minutes=1)), warehouse)
    derived = ("recording_crm", "recording_crm_links", "recording_summaries")
    counts = {t: query(warehouse, f"SELECT count(*) FROM siro.{t} WHERE recording_id = ?", [rid])[0][0] for t in derived}
    assert counts["recording_crm"] == 1 and counts["recording_summaries"] > 0 and counts["recording_crm_links"] > 0

    before = tick(simulated_siro(deleted - timedelta(minutes=1)), None, tmp_path)
    siro_now = simulated_siro(deleted + timedelta(seconds=30))
    after = tick(siro_now, before.cursor, tmp_path)
    (request,) = [rr for rr in after.run_requests if day.isoformat() in days_of(rr)]
    execute(request, siro_now, warehouse)

    for table in derived:
        assert query(warehouse, f"SELECT count(*) FROM siro.{table} WHERE recording_id = ?", [rid]) == [(0,)]
    # The raw table keeps it, flagged, so consumers can reconcile.
    assert query(warehouse, "SELECT deleted FROM siro.recordings WHERE id = ?", [rid]) == [(True,)]


def test_a_partition_range_request_runs_as_one_run_over_every_day(tmp_path, warehouse, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "SENSOR", sensor_with(max_runs_per_tick=1))
    now = datetime(2026, 3, 10, 12, tzinfo=timezone.utc)
    cursor = SensorCursor(watermark=now - timedelta(hours=12)).to_json()
    siro = simulated_siro(now)
    result = tick(siro, cursor, tmp_path)
    (request,) = result.run_requests
    days = days_of(request)
    assert len(days) >= 3 and RANGE_START in request.tags

    with DagsterInstance.ephemeral() as instance:
        run = execute(request, siro, warehouse, instance=instance)
        # One run; every asset materialized once per day of the range.
        materialized = [e for e in run.all_events if e.event_type_value == "ASSET_MATERIALIZATION"]
        raw = [e for e in materialized if e.asset_key.path == ["siro", "recordings"]]
        assert sorted(e.partition for e in raw) == days
    loaded = {str(d) for (d,) in query(warehouse, "SELECT DISTINCT partition_date FROM siro.recordings")}
    assert loaded == set(days)
    truth = WORLD.recordings(now, created_from=datetime.fromisoformat(days[0] + "T00:00:00+00:00"),
                             created_to=datetime.fromisoformat(days[-1] + "T00:00:00+00:00") + timedelta(days=1))
    assert query(warehouse, "SELECT count(*) FROM siro.recordings")[0][0] == len(truth)
