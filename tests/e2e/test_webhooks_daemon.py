"""Webhooks end to end: the simulator's sender -> the receiver process -> a real
`dagster-daemon` on the repo's dagster.yaml with `SIRO_WEBHOOKS=1` -> the tables.

The simulator serves HTTP from this process on a clock running `SPEED` times real time
and hours behind it, so the `updatedAt` sensor (whose first tick lists from the wall
clock's now minus 5 minutes) finds nothing: every change must come in by webhook. Its
sender delivers the world's processing and linking events, some twice, some late, some
out of order. At the end, for every notified recording whose last change was a notified
one, `siro.recording_crm` and the CRM outbox equal what one clean in-process run on the
API's final state produces.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from siro_assets.api_client.timestamps import format_ts
from siro_assets.pipeline.ingest.refresh import RECORDING_IDS_TAG
from siro_assets.pipeline.resources import SiroApiResource, WarehouseResource
from siro_assets.simulator import SimulatorApi, World, WorldConfig
from siro_assets.simulator.clock import to_ms
from siro_assets.simulator.server import run_in_thread
from siro_assets.simulator.webhook_sender import DeliveryFaults, WebhookSender, scaled_schedule, webhook_messages
from siro_assets.warehouse.connection import duckdb_connection
from tests.support import partition_range_tags

from .test_webhook_receiver import SECRET, Receiver

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TOKEN = "e2e-webhook-token"
SPEED = 180.0  # three simulated minutes per second
BEHIND = timedelta(hours=2)  # where the simulated clock starts, behind the wall clock
WORLD = World(WorldConfig(recordings_per_day=1000))  # about one webhook a simulated minute
WINDOW_SECONDS = 10.0  # how long the world moves (and sends) once the daemon ticks
START_SECONDS = 120.0  # the daemon's start-up (its code server imports Dagster and the project)
BUDGET_SECONDS = 180.0  # from the first event to the tables equal to the truth (~40 s on an idle 2-core machine)
READY = "Checking for new runs for sensor: recordings_webhook_sensor"
NOTIFIED = {"processed", "linked", "relinked"}
IN_FLIGHT = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING,
             DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]


class _CompressedClock:
    """Stopped at `origin` until `run()`, then `SPEED` times real time; `freeze()` stops it again."""

    def __init__(self, origin: datetime) -> None:
        self.origin, self.started, self.frozen = origin, None, origin

    def run(self) -> None:
        self.started, self.frozen = time.time(), None

    def now(self) -> datetime:
        if self.frozen is not None:
            return self.frozen
        return self.origin + timedelta(seconds=(time.time() - self.started) * SPEED)

    def freeze(self) -> datetime:
        self.frozen = self.now()
        return self.frozen


def _read(database: Path, sql: str, params=()) -> list[tuple] | None:
    try:
        with duckdb_connection(database, read_only=True, lock_timeout=0.5) as con:
            return con.execute(sql, list(params)).fetchall()
    except Exception:  # noqa: BLE001 - locked by a run, or no table yet: look again
        return None


def _settled(since: datetime, until: datetime) -> tuple[set[str], set[str]]:
    """(notified, settled): the recordings with a webhook event in (since, until], and those
    of them with no change after their last webhook (nothing a webhook run could miss)."""
    messages = webhook_messages(WORLD, since, until)
    notified = {m.recording_id for m in messages}
    last_hook = {m.recording_id: m.happened_ms for m in messages}
    hi = to_ms(until)
    settled = {rid for rid in notified
               if all(kind in NOTIFIED or t <= last_hook[rid] for t, kind in WORLD.base(rid).events if t <= hi)}
    return notified, settled


def _crm_rows(database: Path, ids: set[str]) -> dict[str, tuple] | None:
    """recording_id -> its whole `siro.recording_crm` row, for `ids`; None while unreadable."""
    rows = _read(database, "SELECT recording_id, * FROM siro.recording_crm WHERE recording_id IN (SELECT unnest(?))",
                 [sorted(ids)])
    return None if rows is None else {r[0]: r for r in rows}


OUTBOX_LATEST = """
SELECT recording_id, integration_connection_id, object_type, external_id, crm_field_name, value
FROM siro.crm_outbox WHERE recording_id IN (SELECT unnest(?))
QUALIFY row_number() OVER (PARTITION BY recording_id, integration_connection_id, object_type, external_id, crm_field_name
                           ORDER BY queued_at DESC) = 1
"""


def _reference(tmp_path: Path, base_url: str, notified: set[str]) -> Path:
    """The tables one clean in-process run of exactly `notified` makes on the API's final state."""
    from siro_assets.definitions import defs

    database = tmp_path / "reference.duckdb"
    days = sorted({WORLD.base(rid).id.split("_")[1] for rid in notified})
    first, last = (f"{d[:4]}-{d[4:6]}-{d[6:]}" for d in (days[0], days[-1]))
    result = defs.resolve_job_def("siro_recordings_job").execute_in_process(
        tags={**partition_range_tags(first, last), RECORDING_IDS_TAG: ",".join(sorted(notified))},
        resources={"siro_api": SiroApiResource(token=TOKEN, base_url=base_url),
                   "siro_warehouse": WarehouseResource(database=str(database))})
    assert result.success
    return database


def _caught_up(database: Path, notified: set[str], until: datetime) -> bool:
    """Every notified recording alive at `until` is in siro.recordings at least as of its last webhook."""
    hi = to_ms(until)
    want = {}
    for rid in notified:
        events = [(t, kind) for t, kind in WORLD.base(rid).events if t <= hi]
        if not any(kind in ("deleted", "purged") for _, kind in events):
            want[rid] = max(t for t, kind in events if kind in NOTIFIED)
    rows = _read(database, "SELECT id, epoch_ms(updated_at) FROM siro.recordings WHERE id IN (SELECT unnest(?))",
                 [sorted(want)])
    return rows is not None and all(dict(rows).get(rid, -1) >= t for rid, t in want.items())


def _wait_ready(daemon: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while READY not in log_path.read_text():
        assert daemon.poll() is None and time.monotonic() < deadline, log_path.read_text()[-3000:]
        time.sleep(0.5)


def test_webhooks_bring_changes_through_a_real_daemon_into_recording_crm_and_the_outbox(tmp_path):
    clock = _CompressedClock(datetime.now(timezone.utc) - BEHIND)
    base_url, stop_api = run_in_thread(SimulatorApi(WORLD, clock, token=TOKEN))
    receiver = Receiver(tmp_path)  # serves /webhooks/siro into the inbox beside its warehouse
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIRO_")}
    env.update(DAGSTER_HOME=str(home), SIRO_API_BASE_URL=base_url, SIRO_API_TOKEN=TOKEN,
               SIRO_DUCKDB_PATH=str(receiver.warehouse), SIRO_WEBHOOKS="1", PYTHONPATH=str(ROOT))
    log_path = tmp_path / "daemon.log"
    log = open(log_path, "w")
    daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-m", "siro_assets.definitions"],
                              cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    stop_sender = threading.Event()
    sender_thread = None
    try:
        receiver.wait_ready()
        _wait_ready(daemon, log_path)
        since = clock.now()
        sender = WebhookSender(f"{receiver.url}/webhooks/siro", SECRET, WORLD, clock, since=since,
                               faults=DeliveryFaults(seed=2), retry_schedule=scaled_schedule(1 / 60))
        sender_thread = threading.Thread(target=sender.run, args=(stop_sender,), daemon=True)
        clock.run()
        started = time.time()
        sender_thread.start()
        time.sleep(WINDOW_SECONDS)  # the world moves on its own (compressed) clock meanwhile
        until = clock.freeze()
        notified, settled = _settled(since, until)
        converged = None
        with DagsterInstance.from_config(str(home)) as instance:
            while time.time() - started < BUDGET_SECONDS:
                assert daemon.poll() is None, log_path.read_text()[-3000:]
                if (not sender.pending() and _caught_up(receiver.warehouse, notified, until)
                        and not instance.get_runs(RunsFilter(statuses=IN_FLIGHT))):
                    converged = time.time() - started
                    break
                time.sleep(0.5)
            runs = [r.dagster_run for r in instance.get_run_records(RunsFilter(job_name="siro_recordings_job"))]
            evaluated = {r.run_id: {e.dagster_event.asset_check_evaluation_data.check_name
                                    for e in instance.all_logs(r.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)}
                         for r in runs}
    finally:
        stop_sender.set()
        if sender_thread is not None:
            sender_thread.join(timeout=10)
        os.killpg(daemon.pid, 15)
        daemon.wait(30)
        log.close()
        receiver.stop()

    try:
        reference = _reference(tmp_path, base_url, notified)
    finally:
        stop_api()
    by_webhook = [r for r in runs if RECORDING_IDS_TAG in r.tags]
    print(f"{sender.stats['messages']} webhooks ({sender.stats['attempts']} attempts) for {len(notified)} recordings, "
          f"{len(settled)} settled; {len(runs)} run(s), {len(by_webhook)} by webhook; "
          f"caught up {converged and round(converged)} s after the first event")
    assert converged is not None, f"not caught up within {BUDGET_SECONDS:.0f} s: {[(r.run_id, r.status) for r in runs]}"
    assert len(settled) >= 5 and sender.stats["acknowledged"] >= sender.stats["messages"]
    assert all(r.status == DagsterRunStatus.SUCCESS for r in runs), [(r.run_id, r.status) for r in runs]
    # Every run was a webhook run: polling (listing from the wall clock's now) found nothing.
    assert by_webhook and len(by_webhook) == len(runs)
    # A webhook run executes every asset but only the essential checks (webhooks.checks).
    essential = {"id_unique", "keys_not_null", "no_outstanding_rejects_or_failures"}
    assert all(evaluated[r.run_id] == essential for r in by_webhook), evaluated
    fetched = {rid for r in by_webhook for rid in r.tags[RECORDING_IDS_TAG].split(",")}
    assert fetched == notified, (notified - fetched, fetched - notified)
    want_crm, got_crm = _crm_rows(reference, settled), _crm_rows(receiver.warehouse, settled)
    assert want_crm and got_crm == want_crm, {r for r in set(want_crm) | set(got_crm) if got_crm.get(r) != want_crm.get(r)}
    want_outbox = set(_read(reference, OUTBOX_LATEST, [sorted(settled)]))
    got_outbox = set(_read(receiver.warehouse, OUTBOX_LATEST, [sorted(settled)]))
    assert want_outbox and got_outbox == want_outbox, want_outbox ^ got_outbox
    assert format_ts(until) < format_ts(datetime.now(timezone.utc))
