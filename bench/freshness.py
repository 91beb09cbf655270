"""Freshness benchmark: how long until a change in Siro shows up in `siro.recordings`.

Starts the simulator over HTTP and a real `dagster-daemon` (sensor + run queue + run
launcher), waits for a recording's `updatedAt` to move in the simulated world, and times
how long the change takes to land in DuckDB through the `recordings_updated_sensor`.

    .venv/bin/python bench/freshness.py [--interval 5] [--timeout 300] [--keep]
    .venv/bin/python bench/freshness.py --webhooks [--quick] [--changes 40] [--speed 10]
        [--only webhooks|polling] [--webhook-checks essential|all]

`--webhooks` compares the two paths side by side in one run (see `freshness_push.py`):
N changes through a real daemon with webhooks on, then N through polling at its default
interval, each with p50/p95/max seconds and where the seconds go.

Not a test (pytest does not collect `bench/`). The simulator's clock is the wall clock
plus an offset chosen so that a known event happens ~`--lead` seconds after start; the
sensor cursor is set (`dagster sensor cursor --set`) to the simulated start so the first
tick does not spend the benchmark catching up on older changes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from siro_assets.simulator import World, WorldConfig  # noqa: E402
from siro_assets.api_client.timestamps import format_ts  # noqa: E402
from siro_assets.warehouse.connection import duckdb_connection  # noqa: E402

BIN = Path(sys.executable).parent
TOKEN = "bench-token"
SENSOR = "recordings_updated_sensor"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pick_event(world: World, after: datetime) -> tuple[str, datetime, str, date]:
    """The first event in the world strictly after `after` whose recording was created no
    later than today (UTC wall clock), so its partition exists."""
    today = datetime.now(timezone.utc).date()
    best = None
    for k in range(6):  # events land within 5 days of creation
        day = after.date() - timedelta(days=k)
        if day > today:
            continue
        for r in world.day(day):
            for t, kind in world.timeline(r.id):
                if t > after and (best is None or t < best[1]):
                    best = (r.id, t, kind, day)
    if best is None:
        raise SystemExit(f"no event after {after} in the simulated world")
    return best


def wait_for_line(proc: subprocess.Popen, needle: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if needle in line:
            return
        if proc.poll() is not None:
            raise SystemExit(f"process exited early: {line}{proc.stdout.read()}")
    raise SystemExit(f"timed out waiting for {needle!r}")


def poll_updated_at(db: Path, rid: str) -> datetime | None:
    """The row's updated_at, read-only and briefly (a writer needs the file lock)."""
    if not db.exists():
        return None
    try:
        with duckdb_connection(db, read_only=True, lock_timeout=0.5) as con:
            row = con.execute("SELECT updated_at FROM siro.recordings WHERE id = ?", [rid]).fetchone()
    except Exception:  # noqa: BLE001 - locked, table not created yet, mid-write: try again
        return None
    return row[0] if row else None


def run_summary(home: Path, day: str | None) -> list[str]:
    """Created/started/ended times of the sensor's runs (those covering `day` if given)."""
    from dagster._core.storage.dagster_run import RunsFilter

    lines = []
    with _instance(home) as inst:
        for rec in reversed(inst.get_run_records(RunsFilter(tags={"dagster/sensor_name": SENSOR}))):
            tags = rec.dagster_run.tags
            first = tags.get("dagster/partition") or tags.get("dagster/asset_partition_range_start")
            last = tags.get("dagster/partition") or tags.get("dagster/asset_partition_range_end")
            if first and (day is None or first <= day <= last):
                fmt = lambda ts: datetime.fromtimestamp(ts, timezone.utc).strftime("%H:%M:%S.%f")[:-3] if ts else "-"  # noqa: E731
                lines.append(
                    f"  run {rec.dagster_run.run_id[:8]} {first}..{last} {rec.dagster_run.status.value}: "
                    f"created {fmt(rec.create_timestamp.timestamp())} started {fmt(rec.start_time)} "
                    f"ended {fmt(rec.end_time)} key={tags.get('dagster/run_key')}"
                )
    return lines


def _instance(home: Path):
    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    return DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))


def main() -> int:
    """Run the benchmark once and print the freshness in seconds."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--interval", type=int, default=5, help="SIRO_SENSOR_INTERVAL_SECONDS")
    ap.add_argument("--lead", type=float, default=45.0, help="seconds from start until the event happens")
    ap.add_argument("--timeout", type=float, default=300.0, help="give up after this many seconds")
    ap.add_argument("--backlog-hours", type=float, default=0.0,
                    help="start the cursor this many hours before the simulated start (a catch-up burst first)")
    ap.add_argument("--max-runs", type=int, default=10, help="SIRO_SENSOR_MAX_RUNS_PER_TICK")
    ap.add_argument("--keep", action="store_true", help="keep the temp directory")
    ap.add_argument("--webhooks", action="store_true",
                    help="webhooks vs polling at the default interval, N changes each (freshness_push.py)")
    ap.add_argument("--changes", type=int, default=None, help="--webhooks: changes per mode (default 40, --quick 8)")
    ap.add_argument("--quick", action="store_true", help="--webhooks: a small run (8 changes per mode)")
    ap.add_argument("--speed", type=float, default=10.0,
                    help="--webhooks: the simulated world's speed (10: ~24 changes a minute, 1: ~2.4)")
    ap.add_argument("--only", choices=("webhooks", "polling"), default=None,
                    help="--webhooks: run one mode only")
    ap.add_argument("--webhook-checks", choices=("essential", "all"), default="essential",
                    help="--webhooks: SIRO_WEBHOOK_CHECKS, the asset checks each webhook run executes")
    args = ap.parse_args()
    if args.webhooks:
        from freshness_push import compare_modes

        return compare_modes(changes=args.changes or (8 if args.quick else 40), keep=args.keep, speed=args.speed,
                             only=args.only, webhook_checks=args.webhook_checks)

    tmp = Path(tempfile.mkdtemp(prefix="siro-freshness-"))
    home = tmp / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    db = tmp / "warehouse.duckdb"

    world = World(WorldConfig())
    wall0 = datetime.now(timezone.utc)
    # The simulator clock runs ahead of the wall clock by whatever puts the next event
    # `lead` seconds from now (ahead, never behind: the sensor's first-tick fallback uses
    # the wall clock, and the cursor set below makes the first tick start at sim time).
    rid, event_at, kind, day = pick_event(world, wall0 + timedelta(seconds=args.lead))
    offset = (event_at - (wall0 + timedelta(seconds=args.lead))).total_seconds()
    sim_start = wall0 + timedelta(seconds=offset)
    print(f"target: {rid} ({day}) '{kind}' at sim {format_ts(event_at)}; sim clock = wall + {offset:.1f}s")

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIRO_")}
    env.update(
        DAGSTER_HOME=str(home),
        SIRO_API_BASE_URL=f"http://127.0.0.1:{port}",
        SIRO_API_TOKEN=TOKEN,
        SIRO_DUCKDB_PATH=str(db),
        SIRO_SENSOR_INTERVAL_SECONDS=str(args.interval),
        SIRO_SENSOR_MAX_RUNS_PER_TICK=str(args.max_runs),
        PYTHONUNBUFFERED="1",
    )
    procs: list[subprocess.Popen] = []
    try:
        sim = subprocess.Popen(
            [sys.executable, "-m", "siro_assets.simulator", "--port", str(port), "--token", TOKEN,
             "--offset-seconds", str(offset)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        procs.append(sim)
        wait_for_line(sim, "listening on", 60)

        since = sim_start - timedelta(hours=args.backlog_hours)
        cursor = json.dumps({"v": 1, "watermark": None, "seen": {}, "since": format_ts(since)})
        # On a fresh instance `cursor --set` stores the sensor as STOPPED (overriding its
        # default RUNNING status), so it must be started explicitly afterwards.
        for cmd in (["cursor", SENSOR, "--set", cursor], ["start", SENSOR]):
            subprocess.run(
                [str(BIN / "dagster"), "sensor", *cmd, "-m", "siro_assets.definitions"],
                cwd=ROOT, env=env, check=True, capture_output=True, text=True,
            )
        log = open(tmp / "daemon.log", "w")
        daemon = subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-m", "siro_assets.definitions"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # so its code server and run workers stop with it
        )
        procs.append(daemon)

        deadline = time.monotonic() + args.timeout
        event_wall = event_at - timedelta(seconds=offset)
        seen_at = None
        while time.monotonic() < deadline:
            updated = poll_updated_at(db, rid)
            if updated is not None and updated >= event_at:
                seen_at = datetime.now(timezone.utc)
                break
            if daemon.poll() is not None:
                raise SystemExit(f"dagster-daemon exited; see {tmp / 'daemon.log'}")
            time.sleep(0.5)
        if seen_at is None:
            print(f"NOT FRESH within {args.timeout:.0f}s; daemon log: {tmp / 'daemon.log'}")
            return 1
        freshness = (seen_at - event_wall).total_seconds()
        print(f"freshness: {freshness:.1f} s (event at wall {event_wall:%H:%M:%S}, in siro.recordings at {seen_at:%H:%M:%S}; "
              f"sensor interval {args.interval} s)")
        # Let the runs finish so their final status is reported (bounded).
        while time.monotonic() < deadline and any(
            "STARTED" in line or "QUEUED" in line or "STARTING" in line for line in run_summary(home, None)
        ):
            time.sleep(1)
        for line in run_summary(home, None):
            print(line)
        return 0
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if len(procs) > 1:
            try:
                os.killpg(procs[1].pid, 15)  # the daemon's own session: leftover children
            except ProcessLookupError:
                pass
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
