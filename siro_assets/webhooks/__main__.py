"""CLI: ``python -m siro_assets.webhooks --host 127.0.0.1 --port 8788`` serves the receiver.

Without `--endpoint` it serves every `SiroComponent` instance of the project
(`--project`, default the shipped one): `/webhooks/<key_prefix>`, with the secret
variable and the inbox that instance's `defs.yaml` names (`webhooks.secret_env`,
`webhooks.inbox_path` / `webhooks.inbox_dsn_env`, else the SQLite file beside its
warehouse), so receiver and sensor agree. An instance with `webhooks.enabled` needs its
secret at start; one without is served only if its secret variable is set.
`--endpoint PREFIX=VARIABLE` (repeatable) overrides: only those endpoints, each with that
secret variable. ``python -m siro_assets.webhooks replay ...`` re-queues stored events
(see `replay`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_SECRET_ENV_VAR", "build_parser", "main"]

DEFAULT_SECRET_ENV_VAR = "SIRO_WEBHOOK_SECRET"
DEFAULT_KEY_PREFIX = "siro"


class StartupError(Exception):
    """The receiver cannot start; the message names what to set (never a secret's value)."""


def _endpoint_spec(value: str) -> tuple[str, str]:
    prefix, sep, variable = value.partition("=")
    if not sep or not prefix.strip() or not variable.strip() or "/" in prefix:
        raise argparse.ArgumentTypeError("expected KEY_PREFIX=SECRET_VARIABLE, e.g. west=SIRO_WEST_WEBHOOK_SECRET")
    return prefix.strip(), variable.strip()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for the receiver CLI."""
    p = argparse.ArgumentParser(prog="python -m siro_assets.webhooks", description="Serve Siro's signed webhooks "
                                "into the inbox (`... replay --help`: re-queue stored events).")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8788)
    add_project_arguments(p)
    p.add_argument("--endpoint", type=_endpoint_spec, action="append", default=None, metavar="KEY_PREFIX=SECRET_VARIABLE",
                   help="serve only /webhooks/KEY_PREFIX with the secret in SECRET_VARIABLE (repeatable); default: "
                        "every instance of the project, each with the secret variable its defs.yaml names")
    p.add_argument("--inbox-capacity", type=int, default=None, help="events held at most before answering 503")
    p.add_argument("--max-body-bytes", type=int, default=None)
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return p


def add_project_arguments(p: argparse.ArgumentParser) -> None:
    """`--project` and `--inbox`, shared by serving and replaying."""
    p.add_argument("--project", type=Path, default=None,
                   help="a path inside the Dagster project whose SiroComponent instances to use (default: the "
                        "shipped siro_assets project)")
    p.add_argument("--inbox", type=Path, default=None,
                   help="one SQLite inbox file for every endpoint (default: each instance's own inbox)")


@dataclass(frozen=True)
class Planned:
    """An endpoint to serve: its prefix, its secret variable, its inbox."""

    key_prefix: str
    secret_env: str
    inbox: "InboxLocation"  # noqa: F821 - imported lazily


def _instances(project: Path | None):
    from .project import SHIPPED_PROJECT, project_endpoints

    try:
        return project_endpoints(project or SHIPPED_PROJECT)
    except Exception as exc:  # noqa: BLE001 - any load failure stops the start, with Dagster's own message
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StartupError(f"cannot load the SiroComponent instances of {project or SHIPPED_PROJECT}: {first}") from None


def default_inbox_path() -> Path:
    """The shipped instance's SQLite inbox: beside the warehouse `SIRO_DUCKDB_PATH` selects."""
    shipped = {e.key_prefix: e for e in _instances(None)}[DEFAULT_KEY_PREFIX]
    if shipped.inbox.sqlite_path is None:
        raise StartupError(f"the shipped instance's inbox is in PostgreSQL ({shipped.inbox.describe()})")
    return shipped.inbox.sqlite_path


def _override(args: argparse.Namespace):
    from .location import InboxLocation

    return None if args.inbox is None else InboxLocation(sqlite_path=args.inbox.resolve())


def plan_inbox(args: argparse.Namespace, prefix: str, instances=None):
    """The inbox of endpoint `prefix`: `--inbox`, else the project's instance's own."""
    override = _override(args)
    if override is not None:
        return override
    known = {e.key_prefix: e for e in (instances if instances is not None else _instances(args.project))}
    if prefix not in known:
        raise StartupError(f"no SiroComponent instance has key_prefix {prefix!r} (instances: "
                           f"{', '.join(sorted(known)) or 'none'}); pass --inbox to choose its inbox")
    return known[prefix].inbox


def plan_endpoints(args: argparse.Namespace, environ=os.environ) -> list[Planned]:
    """The endpoints to serve, from `--endpoint` overrides or the project's instances."""
    override = _override(args)
    if args.endpoint:
        for prefix, variable in args.endpoint:
            _secret(variable, prefix, environ)  # a missing secret is reported before any loading
        instances = [] if override else _instances(args.project)
        return [Planned(prefix, variable, plan_inbox(args, prefix, instances)) for prefix, variable in args.endpoint]
    instances = _instances(args.project)
    planned, unset = [], []
    for instance in instances:
        if not environ.get(instance.secret_env, "").strip():
            if instance.enabled:
                _secret(instance.secret_env, instance.key_prefix, environ)
            unset.append(instance)
            continue
        planned.append(Planned(instance.key_prefix, instance.secret_env, override or instance.inbox))
    if not planned:
        raise StartupError("no endpoint to serve: set " + " or ".join(
            f"{i.secret_env} (/webhooks/{i.key_prefix})" for i in unset) if unset else
            "no endpoint to serve: the project has no SiroComponent instance")
    for instance in unset:
        print(f"Siro webhook receiver: /webhooks/{instance.key_prefix} not served (webhooks off, "
              f"{instance.secret_env} unset)", flush=True)
    return planned


def _secret(variable: str, prefix: str, environ) -> str:
    from .verify import InvalidSecretError, decoded_secrets

    secret = environ.get(variable, "")
    if not secret.strip():
        raise StartupError(f"set {variable} to the signing secret (whsec_...) Siro Admin shows for /webhooks/{prefix}")
    try:
        decoded_secrets(secret)
    except InvalidSecretError as exc:
        raise StartupError(f"{variable}: {exc}") from None
    return secret


def serve(argv: list[str]) -> int:
    """Serve until SIGINT/SIGTERM; exit 2 when a secret or an inbox is missing or unusable."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from .app import DEFAULT_MAX_BODY_BYTES, Endpoint, create_app
    from .inbox import DEFAULT_CAPACITY
    from .location import MissingDsnError
    from .verify import StandardWebhooksVerifier

    opened = {}
    try:
        planned = plan_endpoints(args)
        endpoints = []
        for plan in planned:
            verifier = StandardWebhooksVerifier(_secret(plan.secret_env, plan.key_prefix, os.environ))
            if plan.inbox not in opened:
                opened[plan.inbox] = plan.inbox.open(capacity=args.inbox_capacity or DEFAULT_CAPACITY)
            endpoints.append(Endpoint(plan.key_prefix, verifier, opened[plan.inbox]))
    except (StartupError, MissingDsnError) as exc:
        for inbox in opened.values():
            inbox.close()
        print(f"error: {exc}", file=sys.stderr)
        return 2

    import uvicorn

    app = create_app(endpoints, max_body_bytes=args.max_body_bytes or DEFAULT_MAX_BODY_BYTES)
    for plan in planned:
        print(f"Siro webhook receiver: POST /webhooks/{plan.key_prefix} (secret from {plan.secret_env}), "
              f"inbox {plan.inbox.describe()}", flush=True)
    try:
        # limit_concurrency bounds the connections served at once (uvicorn answers 503
        # past it), so a flood cannot grow the receiver's memory without bound.
        uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, limit_concurrency=256,
                    lifespan="off")
    finally:
        for inbox in opened.values():
            inbox.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    """`replay ...` re-queues stored events; anything else serves the receiver."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["replay"]:
        from .replay import main as replay_main

        return replay_main(argv[1:])
    return serve(argv)


if __name__ == "__main__":
    sys.exit(main())
