"""CLI: ``python -m siro_assets.simulator --port 8787 [...]`` serves the simulated API over HTTP."""

from __future__ import annotations

import argparse
import os
import sys
import threading
from datetime import date, timedelta

from .api import FaultConfig, SimulatorApi
from .clock import FixedClock, OffsetClock, WallClock, parse_iso
from .server import run_in_thread, serve_until_signalled
from .world import World, WorldConfig


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for the simulator CLI."""
    p = argparse.ArgumentParser(prog="python -m siro_assets.simulator", description="Serve the deterministic Siro API simulator.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8787)
    p.add_argument("--token", default=None, help="accept only this bearer token (default: any non-empty token)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--recordings-per-day", type=int, default=40)
    p.add_argument("--start-date", type=date.fromisoformat, default=date(2026, 1, 1))
    p.add_argument("--organization-id", default="org_sim")
    p.add_argument("--bulk-resyncs-per-day", type=int, default=0,
                   help="bulk CRM re-syncs a day, each giving 30-45 recordings one updatedAt millisecond")
    clock = p.add_mutually_exclusive_group()
    clock.add_argument("--now", type=parse_iso, default=None, help="fixed clock at this ISO time")
    clock.add_argument("--offset-seconds", type=float, default=None, help="wall clock shifted by this many seconds")
    p.add_argument("--page-size-cap", type=int, default=100)
    p.add_argument("--rate-limit", type=int, default=None, help="requests per minute per token")
    p.add_argument("--error-rate", type=float, default=0.0)
    p.add_argument("--disconnect-rate", type=float, default=0.0)
    p.add_argument("--truncate-rate", type=float, default=0.0)
    p.add_argument("--latency-ms", type=float, default=0.0, help="delay before every response")
    p.add_argument("--latency-jitter-ms", type=float, default=0.0,
                   help="add a uniform random -J..+J ms to each response's delay (e.g. 250 +- 50)")
    p.add_argument("--fault-seed", type=int, default=0)
    hooks = p.add_argument_group("webhooks", "send Siro's webhooks, signed the Svix way, to a receiver")
    hooks.add_argument("--webhook-url", default=None, help="e.g. http://127.0.0.1:8788/webhooks/siro")
    hooks.add_argument("--webhook-secret", default=None,
                       help="the endpoint's whsec_... secret (default: $SIRO_WEBHOOK_SECRET, which keeps it out of ps)")
    hooks.add_argument("--webhook-since", type=parse_iso, default=None,
                       help="also send the events after this ISO time (default: only those from start-up on)")
    hooks.add_argument("--webhook-seed", type=int, default=0, help="seed of the duplicates, delays and reorderings")
    hooks.add_argument("--webhook-duplicate-rate", type=float, default=0.15)
    hooks.add_argument("--webhook-delay-rate", type=float, default=0.2)
    hooks.add_argument("--webhook-reorder-rate", type=float, default=0.15)
    hooks.add_argument("--webhook-drop-fraction", type=float, default=0.0,
                       help="never send this fraction of the messages (seeded); polling must catch them")
    hooks.add_argument("--webhook-retry-scale", type=float, default=1 / 60,
                       help="Svix's retry schedule (5 s, 5 min, 30 min, 2 h, ...) times this (default 1/60)")
    return p


def start_webhook_sender(args: argparse.Namespace, world: World, clock) -> tuple[object, threading.Event, threading.Thread]:
    """Start the webhook sender thread the flags describe (see `webhook_sender`)."""
    from .webhook_sender import DeliveryFaults, WebhookSender, scaled_schedule

    secret = args.webhook_secret or os.environ.get("SIRO_WEBHOOK_SECRET", "")
    if not secret:
        raise SystemExit("--webhook-url needs --webhook-secret or SIRO_WEBHOOK_SECRET")
    faults = DeliveryFaults(
        seed=args.webhook_seed,
        duplicate_rate=args.webhook_duplicate_rate,
        delay_rate=args.webhook_delay_rate,
        reorder_rate=args.webhook_reorder_rate,
        drop_rate=args.webhook_drop_fraction,
    )
    sender = WebhookSender(args.webhook_url, secret, world, clock, since=args.webhook_since, faults=faults,
                           retry_schedule=scaled_schedule(args.webhook_retry_scale))
    stop = threading.Event()
    thread = threading.Thread(target=sender.run, args=(stop,), name="siro-webhook-sender", daemon=True)
    thread.start()
    return sender, stop, thread


def main(argv: list[str] | None = None) -> int:
    """Run the simulator until SIGINT/SIGTERM."""
    args = build_parser().parse_args(argv)
    world = World(WorldConfig(
        seed=args.seed,
        recordings_per_day=args.recordings_per_day,
        start_date=args.start_date,
        organization_id=args.organization_id,
        bulk_resyncs_per_day=args.bulk_resyncs_per_day,
    ))
    if args.now is not None:
        clock = FixedClock(args.now)
    elif args.offset_seconds is not None:
        clock = OffsetClock(timedelta(seconds=args.offset_seconds))
    else:
        clock = WallClock()
    faults = FaultConfig(
        rate_limit_per_minute=args.rate_limit,
        error_rate=args.error_rate,
        disconnect_rate=args.disconnect_rate,
        truncate_rate=args.truncate_rate,
        latency=args.latency_ms / 1000.0,
        seed=args.fault_seed,
    )
    api = SimulatorApi(world, clock, token=args.token, page_size_cap=args.page_size_cap, faults=faults)
    base_url, stop = run_in_thread(
        api, host=args.host, port=args.port, latency_jitter=args.latency_jitter_ms / 1000.0
    )
    print(f"Siro simulator listening on {base_url}", flush=True)
    if args.webhook_url:
        sender, stop_sender, sender_thread = start_webhook_sender(args, world, clock)
        print(f"Siro simulator sending webhooks to {args.webhook_url}", flush=True)
        stop_api = stop

        def stop() -> None:
            stop_sender.set()
            sender_thread.join(timeout=10)
            stats = sender.stats
            print(f"webhooks: {stats['messages']} messages, {stats['attempts']} attempts, "
                  f"{stats['acknowledged']} acknowledged, {stats['given_up']} given up, {stats['dropped']} dropped",
                  flush=True)
            stop_api()

    serve_until_signalled(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
