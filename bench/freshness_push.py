"""`bench/freshness.py --webhooks`: seconds from a change in Siro to its row in DuckDB,
with webhooks and with polling at the default interval, side by side in one run.

Each mode is one session: the simulator serves HTTP from this process, a real
`dagster-daemon` runs the repo's dagster.yaml, and (webhooks) the receiver runs as
`python -m siro_assets.webhooks` while the simulator's sender posts to it. The simulated
world runs `SPEED` times real time, so N changes happen in seconds; every latency is
measured in real seconds. A change is a processing or linking event (what Siro sends
webhooks for), timed from the real instant it happens in the simulator to the commit of
the run that wrote it, split into:

- receive: change -> the inbox's `received_at` (webhooks only)
- tick: -> the run's creation (waiting for, and evaluating, the sensor tick)
- queue: -> the run coordinator dequeues it (RUN_STARTING)
- start: -> the raw step starts (process spawn, imports, RUN_START)
- fetch: -> the last API answer the step got before its write
- write: -> the raw table's materialization (the swap/upsert committed)

The run that wrote a change is, with webhooks, the first run whose `siro/recording_ids`
names it; polling runs name no ids, so there it is the one whose raw step started last
before a read-only reader of the warehouse first saw the row. The row's time is that run's
`siro/recordings` materialization, or the reader's sighting if that came first.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from siro_assets.api_client.timestamps import format_ts  # noqa: E402
from siro_assets.pipeline.ingest.refresh import RECORDING_IDS_TAG  # noqa: E402
from siro_assets.simulator import SimulatorApi, World, WorldConfig  # noqa: E402
from siro_assets.simulator.server import run_in_thread  # noqa: E402
from siro_assets.simulator.webhook_sender import DeliveryFaults, WebhookSender, webhook_messages  # noqa: E402
from siro_assets.warehouse.connection import duckdb_connection  # noqa: E402

BIN = Path(sys.executable).parent
TOKEN = "bench-token"
SECRET = "whsec_YmVuY2gtb25seSB3ZWJob29rIHNlY3JldCwgbm90IGZvciBwcm9k"
SPEED = 10.0  # the default; `--speed` sets it
WORLD = World(WorldConfig(recordings_per_day=2000))  # ~0.04 webhook-worthy changes a real second per unit of speed
POLLING_DEFAULT_SECONDS = 60  # the updatedAt sensor's default interval
POLLING_WITH_WEBHOOKS_SECONDS = 600  # its default once webhooks are on
STAGES = ("receive", "tick", "queue", "start", "fetch", "write")
START_TIMEOUT = 180.0
POLLING_SENSOR, WEBHOOK_SENSOR = "recordings_updated_sensor", "recordings_webhook_sensor"


class Clock:
    """Frozen at `origin` until `run()`, then `speed` times real time; `freeze()` stops it."""

    def __init__(self, origin: datetime, speed: float = SPEED) -> None:
        self.origin, self.run_at, self.frozen, self.speed = origin, None, origin, speed

    def run(self) -> None:
        self.run_at, self.frozen = time.time(), None

    def now(self) -> datetime:
        if self.frozen is not None:
            return self.frozen
        return self.origin + timedelta(seconds=(time.time() - self.run_at) * self.speed)

    def freeze(self) -> datetime:
        self.frozen = self.now()
        return self.frozen

    def real(self, happened_ms: int) -> float:
        """The real epoch second at which a simulated instant happened."""
        return self.run_at + (happened_ms / 1000 - self.origin.timestamp()) / self.speed


class LoggingApi(SimulatorApi):
    """The simulator, remembering when it answered each request (to end the fetch stage)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.answered: list[tuple[float, str]] = []

    def handle(self, method, path, query, headers):
        answer = super().handle(method, path, query, headers)
        self.answered.append((time.time(), path))
        return answer


@dataclass
class Change:
    msg_id: str
    recording_id: str
    happened_ms: int
    at: float  # real epoch seconds
    seen: float | None = None
    stages: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return sum(self.stages.values())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(check, what: str, proc: subprocess.Popen, log: Path, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{what} did not start; see {log}")
        time.sleep(0.3)


def _watch(database: Path, happened: Callable[[], list[Change]], stop: threading.Event) -> None:
    """Note when each change's row (updated_at at least the change) is first readable.

    `happened()` is the changes so far: the watch starts with the world, not once the
    stream is over, or an early change would be first seen minutes after its row landed.
    """
    while not stop.is_set():
        changes = happened()
        pending = [c for c in changes if c.seen is None]
        if pending and database.exists():
            ids = sorted({c.recording_id for c in pending})
            try:
                with duckdb_connection(database, read_only=True, lock_timeout=0.2) as con:
                    rows = dict(con.execute("SELECT id, epoch_ms(updated_at) FROM siro.recordings "
                                            "WHERE id IN (SELECT unnest(?))", [ids]).fetchall())
                now = time.time()
                for c in pending:
                    if rows.get(c.recording_id, -1) >= c.happened_ms:
                        c.seen = now
            except Exception:  # noqa: BLE001 - a run holds the file, or no table yet
                pass
        stop.wait(0.25)


class _Stream:
    """The changes that have happened in the world so far, each one `Change` for good."""

    def __init__(self, clock: Clock) -> None:
        self.clock, self._by_id, self._lock = clock, {}, threading.Lock()

    def __call__(self, until: datetime | None = None) -> list[Change]:
        with self._lock:
            for m in webhook_messages(WORLD, self.clock.origin, until or self.clock.now()):
                if m.msg_id not in self._by_id:
                    self._by_id[m.msg_id] = Change(m.msg_id, m.recording_id, m.happened_ms,
                                                   self.clock.real(m.happened_ms))
            return list(self._by_id.values())


def _runs(home: Path) -> list[dict]:
    """Each run's create/dequeue/start times and its raw step's start and materialization."""
    from dagster import DagsterEventType, DagsterInstance, RunsFilter

    found = []
    with DagsterInstance.from_config(str(home)) as instance:
        for record in instance.get_run_records(RunsFilter(job_name="siro_recordings_job")):
            run = {"id": record.dagster_run.run_id, "tags": record.dagster_run.tags,
                   "created": record.create_timestamp.timestamp()}
            for entry in instance.all_logs(run["id"]):
                event = entry.dagster_event
                if event is None:
                    continue
                if event.event_type == DagsterEventType.RUN_STARTING:
                    run["dequeued"] = entry.timestamp
                elif event.event_type == DagsterEventType.STEP_START and entry.step_key == "siro__recordings":
                    run["step"] = entry.timestamp
                elif (event.event_type == DagsterEventType.ASSET_MATERIALIZATION
                      and event.asset_key.path == ["siro", "recordings"]):
                    run["written"] = entry.timestamp
            if "written" in run:
                found.append(run)
    return sorted(found, key=lambda r: r["written"])


def _in_flight(home: Path) -> bool:
    from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

    statuses = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING,
                DagsterRunStatus.STARTED]
    with DagsterInstance.from_config(str(home)) as instance:
        return bool(instance.get_runs(RunsFilter(statuses=statuses)))


def _received(inbox: Path) -> dict[str, float]:
    from siro_assets.webhooks.inbox import SqliteInbox

    if not inbox.exists():
        return {}
    with SqliteInbox(inbox) as box:
        return {e.message_id: e.received_at.timestamp() for e in box.read_after(0, 100_000)}


def _attribute(changes: list[Change], runs: list[dict], answered: list[tuple[float, str]],
               received: dict[str, float], webhooks: bool) -> None:
    for c in changes:
        if c.seen is None:
            continue
        # Raw steps write one at a time (the DuckDB pool): the writer is the run whose raw
        # step started last before the row was seen. Its materialization event can be
        # logged just after the reader saw the commit, so the row's time is the earlier.
        writers = [r for r in runs if r["step"] <= c.seen and r["written"] >= c.at]
        # A webhook run names its ids: its writer is the first run naming this one. The
        # sighting can lag (the reader waits while runs hold the file), so the latest run
        # before it may be a later one.
        named = [r for r in runs if r["written"] >= c.at
                 and c.recording_id in r["tags"].get(RECORDING_IDS_TAG, "").split(",")]
        if webhooks and named:
            writers = [min(named, key=lambda r: r["written"])]
        if not writers:
            continue
        run = max(writers, key=lambda r: r["step"])
        end = min(run["written"], max(c.seen, run["step"]))
        got = received.get(c.msg_id) if webhooks else None
        last_answer = max((t for t, _ in answered if run["step"] <= t <= end), default=run["step"])
        # A changes-only run lists when its step starts, so it can bring a change made after
        # the run was created: the instants are made monotonic and such stages count 0 s.
        points, instant = [], c.at
        for t in (got if got is not None else c.at, run["created"], run.get("dequeued", run["created"]),
                  run["step"], last_answer, end):
            instant = max(instant, t)
            points.append(instant)
        c.stages = {stage: b - a for stage, a, b in zip(STAGES, [c.at, *points[:-1]], points)}


def session(mode: str, changes_wanted: int, work: Path, speed: float = SPEED,
            webhook_checks: str = "essential") -> tuple[list[Change], dict]:
    """One daemon session in `mode` ("webhooks" or "polling"); the changes, timed, and counts."""
    webhooks = mode == "webhooks"
    tmp = work / mode
    home = tmp / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    database = tmp / "siro.duckdb"
    clock = Clock(datetime.now(timezone.utc).replace(microsecond=0), speed)
    # Generate the world's recent days now, not inside the first API answer or sender pass.
    webhook_messages(WORLD, clock.origin - timedelta(seconds=1), clock.origin + timedelta(hours=2))
    api = LoggingApi(WORLD, clock, token=TOKEN)
    base_url, stop_api = run_in_thread(api)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIRO_")}
    env.update(DAGSTER_HOME=str(home), SIRO_API_BASE_URL=base_url, SIRO_API_TOKEN=TOKEN,
               SIRO_DUCKDB_PATH=str(database), PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT))
    if webhooks:
        # As defs.yaml recommends with webhooks on: polling every 10 minutes, as the safety net.
        env.update(SIRO_WEBHOOKS="1", SIRO_WEBHOOK_SECRET=SECRET, SIRO_WEBHOOK_CHECKS=webhook_checks,
                   SIRO_SENSOR_INTERVAL_SECONDS=str(POLLING_WITH_WEBHOOKS_SECONDS))
    procs: list[subprocess.Popen] = []
    logs = []
    stop_threads = threading.Event()
    threads: list[threading.Thread] = []
    sender = None
    try:
        # The updatedAt sensor lists from the simulated start, not from the wall clock's
        # now minus its lookback (`cursor --set` stores it stopped: start it again). With
        # webhooks it stays stopped: on a fresh instance its first tick would request a
        # catch-up run that races the webhook runs, where in production it ticks every
        # 10 minutes as the safety net (tests/integration/test_lost_webhooks.py).
        cursor = json.dumps({"v": 1, "watermark": None, "seen": {}, "since": format_ts(clock.origin)})
        commands = [["cursor", POLLING_SENSOR, "--set", cursor]] + ([] if webhooks else [["start", POLLING_SENSOR]])
        for cmd in commands:
            subprocess.run([str(BIN / "dagster"), "sensor", *cmd, "-m", "siro_assets.definitions"],
                           cwd=ROOT, env=env, check=True, capture_output=True, text=True)
        if webhooks:
            port = _free_port()
            log = tmp / "receiver.log"
            logs.append(open(log, "w"))
            receiver = subprocess.Popen([sys.executable, "-m", "siro_assets.webhooks", "--port", str(port),
                                         "--log-level", "warning"],
                                        cwd=ROOT, env=env, stdout=logs[-1], stderr=subprocess.STDOUT)
            procs.append(receiver)
        daemon_log = tmp / "daemon.log"
        logs.append(open(daemon_log, "w"))
        daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-m", "siro_assets.definitions"],
                                  cwd=ROOT, env=env, stdout=logs[-1], stderr=subprocess.STDOUT,
                                  start_new_session=True)
        procs.append(daemon)
        # The sensor has ticked once, and (polling) its first run is over, before the world
        # moves: the changes then meet the sensor at a random phase of its interval.
        name = WEBHOOK_SENSOR if webhooks else POLLING_SENSOR
        ticked = (f"Sensor {name} skipped", f"Creating new run for {name}")
        _wait_for(lambda: any(m in daemon_log.read_text() for m in ticked), "dagster-daemon", daemon, daemon_log)
        _wait_for(lambda: not _in_flight(home), "the first tick's runs", daemon, daemon_log)
        # Right after a tick is the worst phase for polling: start at a seeded random point
        # of the polling (or webhook) interval instead.
        time.sleep(random.Random(mode).uniform(0, 5 if webhooks else POLLING_DEFAULT_SECONDS))
        if webhooks:
            import httpx

            def healthy() -> bool:
                try:
                    return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
                except httpx.HTTPError:
                    return False

            _wait_for(healthy, "the receiver", receiver, tmp / "receiver.log")
            # Svix-like delivery, without the test faults' extra delays and reorderings.
            sender = WebhookSender(f"http://127.0.0.1:{port}/webhooks/siro", SECRET, WORLD, clock,
                                   since=clock.origin, faults=DeliveryFaults(duplicate_rate=0.1, delay_rate=0,
                                                                             reorder_rate=0))
            threads.append(threading.Thread(target=sender.run, args=(stop_threads, 0.1), daemon=True))
        stream = _Stream(clock)
        threads.append(threading.Thread(target=_watch, args=(database, stream, stop_threads), daemon=True))
        clock.run()
        for t in threads:
            t.start()
        while len(stream()) < changes_wanted:
            time.sleep(0.5)
        until = clock.freeze()
        changes = stream(until)
        # From the last change, not the session's start: at a low --speed the changes
        # alone take minutes, and the last ones must have their full time to land.
        budget, last_change = 120 + (0 if webhooks else 2 * POLLING_DEFAULT_SECONDS), time.time()
        while any(c.seen is None for c in changes) and time.time() - last_change < budget:
            if daemon.poll() is not None:
                raise SystemExit(f"dagster-daemon exited; see {daemon_log}")
            time.sleep(0.5)
        idle_from = time.time()
        requests_before = api.request_count
        time.sleep(2)
        runs = _runs(home)
        from siro_assets.webhooks.inbox import inbox_path_for

        received = _received(inbox_path_for(database)) if webhooks else {}
        _attribute(changes, runs, api.answered, received, webhooks)
        counts = {"runs": len(runs), "api_requests": api.request_count,
                  "idle_window_requests": (api.request_count - requests_before, time.time() - idle_from),
                  "attempts": sender.stats["attempts"] if sender else 0}
        return changes, counts
    finally:
        stop_threads.set()
        for t in threads:
            t.join(timeout=5)
        if sender is not None:
            sender.close()
        for proc in reversed(procs):
            try:
                os.killpg(proc.pid, 15) if proc is procs[-1] else proc.terminate()
                proc.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                proc.kill()
        for log in logs:
            log.close()
        stop_api()


def _pct(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def report(mode: str, changes: list[Change], counts: dict, interval: int) -> list[str]:
    """The mode's figures: p50/p95/max, the stage medians, the idle cost."""
    timed = [c for c in changes if c.stages]
    totals = [c.total for c in timed]
    lines = [f"{mode}: {len(timed)}/{len(changes)} changes timed, {counts['runs']} run(s), "
             f"{counts['api_requests']} API requests in the session"]
    if totals:
        lines.append(f"  change -> row in DuckDB: p50 {_pct(totals, 50):.1f} s, p95 {_pct(totals, 95):.1f} s, "
                     f"max {max(totals):.1f} s")
        lines.append("  median per stage: " + ", ".join(
            f"{s} {statistics.median(c.stages[s] for c in timed):.1f}" for s in STAGES) + " (s)")
    idle = 3600 // interval
    lines.append(f"  idle API requests/hour: {idle} (the updatedAt sensor every {interval} s"
                 + ("; an idle webhook tick makes none)" if mode == "webhooks" else ")"))
    return lines


def compare_modes(changes: int, keep: bool = False, speed: float = SPEED, only: str | None = None,
                  webhook_checks: str = "essential") -> int:
    """Run both sessions (or `only` one) and print the figures side by side."""
    work = Path(tempfile.mkdtemp(prefix="siro-freshness-push-"))
    load = os.getloadavg()[0]
    print(f"{changes} changes per mode; the world at {speed:g}x real time (~{2.4 * speed:.0f} changes a minute); "
          f"webhook runs check {webhook_checks}; load average {load:.1f} "
          f"on {os.cpu_count()} cores at start", flush=True)
    try:
        for mode, interval in (("webhooks", POLLING_WITH_WEBHOOKS_SECONDS), ("polling", POLLING_DEFAULT_SECONDS)):
            if only not in (None, mode):
                continue
            timed, counts = session(mode, changes, work, speed, webhook_checks)
            lines = report(mode, timed, counts, interval)
            print("\n".join(lines), flush=True)
        print(f"load average {os.getloadavg()[0]:.1f} at the end")
        return 0
    finally:
        if keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
