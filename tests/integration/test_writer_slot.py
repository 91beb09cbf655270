"""The one-writer slot is held only while writing: a backfill waiting on the API does
not hold up a run for today, yet writes still take turns."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from dagster import DagsterInstance, DagsterRunStatus
from dagster._core.remote_origin import (
    RegisteredCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

from siro_assets.pipeline.resources import WAREHOUSE_POOL
from siro_assets.definitions import defs
from siro_assets.warehouse.connection import writer_lock
from tests.support import partition_range_tags

ROOT = Path(__file__).resolve().parents[2]
JOB = "siro_recordings_job"


def test_the_run_queue_starts_todays_run_while_a_backfill_runs(tmp_path, monkeypatch):
    """With the repo's dagster.yaml, the daemon's dequeue step (the code the run queue
    runs each tick) launches a queued run for today while a 30-day backfill is in
    progress. With a run-granularity pool the backfill held the slot for its whole run."""
    shutil.copy(ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    # Creating a run resolves the job's resource config, whose token is an EnvVar.
    monkeypatch.setenv("SIRO_API_TOKEN", "placeholder-token-for-run-creation")
    # Queued runs need a code location origin; the dequeue decision never loads it.
    origin = RemoteJobOrigin(
        RemoteRepositoryOrigin(RegisteredCodeLocationOrigin("siro_assets"), "__repository__"), JOB
    )
    job = defs.resolve_job_def(JOB)
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        instance.create_run_for_job(
            job, status=DagsterRunStatus.STARTED, remote_job_origin=origin,
            tags=partition_range_tags("2026-01-01", "2026-01-30"),
        )
        today = instance.create_run_for_job(
            job, status=DagsterRunStatus.QUEUED, remote_job_origin=origin,
            tags={"dagster/partition": "2026-03-10"},
        )
        # What the daemon's first ticks do for a pool it has seen in a queued run.
        instance.event_log_storage.initialize_concurrency_limit_to_default(WAREHOUSE_POOL)
        to_launch = QueuedRunCoordinatorDaemon(interval_seconds=1)._get_runs_to_dequeue(
            instance, instance.get_concurrency_config(), fixed_iteration_time=None
        )
    assert [run.run_id for run in to_launch] == [today.run_id]


def test_writers_take_turns_on_the_writer_lock(tmp_path):
    database = tmp_path / "w.duckdb"
    first_holds, second_tried, second_got = threading.Event(), threading.Event(), threading.Event()
    release_first = threading.Event()

    def first():
        with writer_lock(database, timeout=60):
            first_holds.set()
            release_first.wait(60)

    def second():
        first_holds.wait(60)
        second_tried.set()
        with writer_lock(database, timeout=60):
            second_got.set()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    assert second_tried.wait(60)
    assert not second_got.is_set()  # the first still holds it
    release_first.set()
    assert second_got.wait(60)
    for t in threads:
        t.join(60)
