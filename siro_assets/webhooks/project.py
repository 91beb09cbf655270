"""The project's webhook endpoints: every `SiroComponent` instance under its defs folder.

Found with Dagster's public `ComponentTree` (what `dg` loads): each instance's `defs.yaml`
is resolved against the environment, but no Definitions are built, so no resource is
made, the API token is never read, and the simulator is never imported. Of each
instance only its key prefix, its `webhooks:` attributes and its warehouse path are kept.

The one module of `siro_assets.webhooks` (with `__main__`) that imports Dagster.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from .location import InboxLocation

__all__ = ["SHIPPED_PROJECT", "InstanceEndpoint", "project_endpoints"]

#: The project this package ships (`siro_assets/defs/`); another project passes its own path.
SHIPPED_PROJECT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class InstanceEndpoint:
    """One instance's endpoint: `/webhooks/<key_prefix>`, its secret variable and its inbox."""

    key_prefix: str
    enabled: bool
    secret_env: str
    inbox: InboxLocation


def project_endpoints(path_within_project: Path = SHIPPED_PROJECT) -> list[InstanceEndpoint]:
    """The endpoints of every `SiroComponent` instance of the project holding `path_within_project`."""
    import dagster as dg

    from ..component import SiroComponent

    tree = _component_tree(dg, Path(path_within_project).resolve())
    endpoints = []
    for component in tree.get_all_components(of_type=SiroComponent):
        settings = component.pipeline_settings()
        endpoints.append(InstanceEndpoint(
            key_prefix=settings.key_prefix,
            enabled=settings.webhooks.enabled,
            secret_env=settings.webhook_secret_env,
            inbox=InboxLocation.for_instance(inbox_path=settings.webhooks.inbox_path,
                                             inbox_dsn_env=settings.webhooks.inbox_dsn_env,
                                             warehouse_path=component.warehouse_path()),
        ))
    return sorted(endpoints, key=lambda e: e.key_prefix)


def _component_tree(dg, path: Path):
    # A project checked out but not installed is imported from its root, as
    # `PYTHONPATH=<root>` would (Dagster's own error suggests that); appended, so an
    # installed copy still wins.
    root = next((p for p in (path, *path.parents) if (p / "pyproject.toml").exists() or (p / "dg.toml").exists()), None)
    if root is not None and str(root) not in sys.path:
        sys.path.append(str(root))
    return dg.ComponentTree.for_project(path)
