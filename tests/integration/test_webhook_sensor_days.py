"""The webhook sensor's runs cover only the days its notified recordings were created on."""

from __future__ import annotations

from datetime import date, datetime, timezone

from siro_assets.pipeline.automation.dagster_gaps import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from siro_assets.pipeline.automation.jobs import build_recordings_job
from siro_assets.pipeline.automation.webhook_sensor import build_webhook_sensor
from siro_assets.pipeline.ingest.refresh import RECORDING_IDS_TAG
from siro_assets.pipeline.settings import PipelineSettings, SensorOptions, WebhookOptions
from tests.integration.test_sensor import WORLD
from tests.integration.test_webhook_sensor import _notify, _tick
from tests.support import simulated_siro

NOW = datetime(2026, 3, 10, 12, tzinfo=timezone.utc)


def _ids(day: date, n: int = 2) -> list[str]:
    return [r.id for r in WORLD.day(day)[:n]]


def _ranges(result) -> dict[tuple[str, str], set[str]]:
    return {(r.tags[PARTITION_RANGE_START_TAG], r.tags[PARTITION_RANGE_END_TAG]): set(r.tags[RECORDING_IDS_TAG].split(","))
            for r in result.run_requests}


def test_notified_days_apart_get_a_run_each_not_one_over_every_day_between(warehouse):
    first, second, third = _ids(date(2026, 3, 1)), _ids(date(2026, 3, 2), 1), _ids(date(2026, 3, 6))
    for n, rid in enumerate(first + third + second):
        _notify(warehouse, rid, f"msg_{n}")
    result = _tick(simulated_siro(NOW), warehouse)
    # 03-01 and 03-02 are neighbours (one run); 03-06 is three days away: its own run,
    # not a run rebuilding 03-03..03-05 that nothing touched.
    assert _ranges(result) == {("2026-03-01", "2026-03-02"): set(first + second), ("2026-03-06", "2026-03-06"): set(third)}
    assert len({r.run_key for r in result.run_requests}) == 2
    assert result.cursor == "5"


def test_more_separate_days_than_runs_a_tick_may_request_merge_the_closest(warehouse):
    settings = PipelineSettings(webhooks=WebhookOptions(enabled=True), sensor=SensorOptions(max_runs_per_tick=2))
    sensor = build_webhook_sensor(settings, build_recordings_job(settings))
    days = [date(2026, 3, 1), date(2026, 3, 3), date(2026, 3, 8)]
    ids = {d: _ids(d, 1) for d in days}
    for n, d in enumerate(days):
        _notify(warehouse, ids[d][0], f"msg_{n}")
    result = _tick(simulated_siro(NOW), warehouse, sensor=sensor)
    assert _ranges(result) == {("2026-03-01", "2026-03-03"): set(ids[days[0]] + ids[days[1]]),
                               ("2026-03-08", "2026-03-08"): set(ids[days[2]])}
