"""CLI: ``python -m siro_assets.webhooks --host 127.0.0.1 --port 8788`` serves the receiver.

The shipped project's endpoint is `/webhooks/siro`, its secret in `SIRO_WEBHOOK_SECRET`;
`--endpoint PREFIX=VARIABLE` (repeatable) serves other component instances, each with the
secret variable its `defs.yaml` names. The inbox sits beside the warehouse the pipeline's
own settings select (`SIRO_DUCKDB_PATH`, else the default path), so receiver and runs agree.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

__all__ = ["DEFAULT_SECRET_ENV_VAR", "build_parser", "main"]

DEFAULT_SECRET_ENV_VAR = "SIRO_WEBHOOK_SECRET"
DEFAULT_KEY_PREFIX = "siro"


def _endpoint_spec(value: str) -> tuple[str, str]:
    prefix, sep, variable = value.partition("=")
    if not sep or not prefix.strip() or not variable.strip() or "/" in prefix:
        raise argparse.ArgumentTypeError("expected KEY_PREFIX=SECRET_VARIABLE, e.g. west=SIRO_WEST_WEBHOOK_SECRET")
    return prefix.strip(), variable.strip()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for the receiver CLI."""
    p = argparse.ArgumentParser(prog="python -m siro_assets.webhooks", description="Serve Siro's signed webhooks into the inbox.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8788)
    p.add_argument("--endpoint", type=_endpoint_spec, action="append", default=None, metavar="KEY_PREFIX=SECRET_VARIABLE",
                   help=f"serve /webhooks/KEY_PREFIX with the secret in SECRET_VARIABLE (default: "
                        f"{DEFAULT_KEY_PREFIX}={DEFAULT_SECRET_ENV_VAR}); repeatable")
    p.add_argument("--inbox", type=Path, default=None,
                   help="inbox file (default: <warehouse stem>.webhooks.sqlite beside SIRO_DUCKDB_PATH's warehouse)")
    p.add_argument("--inbox-capacity", type=int, default=None, help="events held at most before answering 503")
    p.add_argument("--max-body-bytes", type=int, default=None)
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return p


def default_inbox_path() -> Path:
    """The inbox beside the warehouse file the pipeline's environment variables select."""
    # The shipped instance's own `defs.yaml`, resolved as the pipeline resolves it: loading
    # it costs Dagster's import time at start-up, and keeps the two from ever disagreeing.
    from ..component.project import project_warehouse_path
    from .inbox import inbox_path_for

    return inbox_path_for(project_warehouse_path())


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGINT/SIGTERM; exit 2 when a secret is missing or unusable."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from .app import DEFAULT_MAX_BODY_BYTES, Endpoint, create_app
    from .inbox import DEFAULT_CAPACITY, SqliteInbox
    from .verify import InvalidSecretError, StandardWebhooksVerifier

    endpoints = []
    for prefix, variable in args.endpoint or [(DEFAULT_KEY_PREFIX, DEFAULT_SECRET_ENV_VAR)]:
        secret = os.environ.get(variable, "")
        if not secret.strip():
            print(f"error: set {variable} to the signing secret (whsec_...) Siro Admin shows for /webhooks/{prefix}",
                  file=sys.stderr)
            return 2
        try:
            endpoints.append(Endpoint(prefix, StandardWebhooksVerifier(secret)))
        except InvalidSecretError as exc:
            print(f"error: {variable}: {exc}", file=sys.stderr)
            return 2

    import uvicorn

    inbox = SqliteInbox(args.inbox or default_inbox_path(), capacity=args.inbox_capacity or DEFAULT_CAPACITY)
    app = create_app(endpoints, inbox, max_body_bytes=args.max_body_bytes or DEFAULT_MAX_BODY_BYTES)
    for prefix, variable in args.endpoint or [(DEFAULT_KEY_PREFIX, DEFAULT_SECRET_ENV_VAR)]:
        print(f"Siro webhook receiver: POST /webhooks/{prefix} (secret from {variable})", flush=True)
    print(f"Siro webhook inbox: {inbox.path}", flush=True)
    try:
        # limit_concurrency bounds the connections served at once (uvicorn answers 503
        # past it), so a flood cannot grow the receiver's memory without bound.
        uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, limit_concurrency=256,
                    lifespan="off")
    finally:
        inbox.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
