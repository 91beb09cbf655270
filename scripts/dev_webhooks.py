"""`make dev-webhooks`: the Dagster UI on the HTTP simulator, with Siro's webhooks pushed in.

Starts the webhook receiver (`python -m siro_assets.webhooks`) and the simulator over HTTP
sending signed webhooks to it, then runs `dg dev` (or the command after `--`) with
`SIRO_WEBHOOKS=1` pointed at both; stops the two when the command ends (Ctrl-C included).

    python scripts/dev_webhooks.py [--sim-port 8787] [--webhook-port 8788] [-- COMMAND ...]

The signing secret is `SIRO_WEBHOOK_SECRET`, or a fixed local-only one when unset; the
receiver's inbox sits beside the warehouse `SIRO_DUCKDB_PATH` selects, as in production.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# A local demo secret, never used outside this script: valid `whsec_` base64.
DEV_SECRET = "whsec_ZGV2LW9ubHkgd2ViaG9vayBzZWNyZXQsIG5vdCBmb3IgcHJvZA=="
START_TIMEOUT = 90.0


def build_parser() -> argparse.ArgumentParser:
    """Ports, the world's density, and the command to run (default `dg dev`)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sim-port", type=int, default=8787)
    p.add_argument("--webhook-port", type=int, default=8788)
    p.add_argument("--recordings-per-day", type=int, default=5000,
                   help="the simulated world's density: 5,000 a day is a webhook every ~10 s")
    p.add_argument("--backlog-minutes", type=float, default=30.0,
                   help="also send the events of the last N minutes at start-up, so the UI shows runs at once")
    p.add_argument("command", nargs=argparse.REMAINDER, help="after --: run this instead of `dg dev`")
    return p


def _wait(check, what: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not check():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{what} did not start (exit {proc.poll()})")
        time.sleep(0.2)


def _answers(url: str, status: int | None = None) -> bool:
    """Whether `url` answers (with `status`, if given)."""
    try:
        answer = httpx.get(url, timeout=1).status_code
    except httpx.HTTPError:
        return False
    return status is None or answer == status


def main(argv: list[str] | None = None) -> int:
    """Start receiver and simulator, run the command, stop both; returns the command's exit code."""
    args = build_parser().parse_args(argv)
    command = [c for c in args.command if c != "--"] or [str(BIN / "dg"), "dev"]
    env = {k: v for k, v in os.environ.items() if k != "SIRO_SIMULATOR"}
    env.setdefault("SIRO_WEBHOOK_SECRET", DEV_SECRET)
    env.setdefault("SIRO_API_TOKEN", "dev-token")  # the simulator accepts any token
    env.update(SIRO_WEBHOOKS="1", SIRO_API_BASE_URL=f"http://127.0.0.1:{args.sim_port}")
    webhook_url = f"http://127.0.0.1:{args.webhook_port}/webhooks/siro"
    started: list[subprocess.Popen] = []
    try:
        receiver = subprocess.Popen([sys.executable, "-m", "siro_assets.webhooks", "--port", str(args.webhook_port)],
                                    cwd=ROOT, env=env)
        started.append(receiver)
        _wait(lambda: _answers(f"http://127.0.0.1:{args.webhook_port}/healthz", 200), "the webhook receiver", receiver)
        simulator = subprocess.Popen(
            [sys.executable, "-m", "siro_assets.simulator", "--port", str(args.sim_port),
             "--recordings-per-day", str(args.recordings_per_day), "--webhook-url", webhook_url,
             "--webhook-since", (datetime.now(timezone.utc) - timedelta(minutes=args.backlog_minutes)).isoformat()],
            cwd=ROOT, env=env)
        started.append(simulator)
        _wait(lambda: _answers(env["SIRO_API_BASE_URL"]), "the simulator", simulator)  # any answer: it is up
        print(f"dev-webhooks: simulator {env['SIRO_API_BASE_URL']} sends to {webhook_url}; "
              f"the webhook sensor drains them every 5 s (Automation -> recordings_webhook_sensor)", flush=True)
        try:
            return subprocess.call(command, cwd=ROOT, env=env)
        except KeyboardInterrupt:
            return 130
    finally:
        for proc in reversed(started):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()


if __name__ == "__main__":
    sys.exit(main())
