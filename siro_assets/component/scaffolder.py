"""`dg scaffold defs siro_assets.SiroComponent <name>`: a working `defs.yaml`, every default shown."""

from __future__ import annotations

import dagster as dg

DEFS_YAML = """\
type: {type_name}

# Every attribute has a default; uncomment to change one. See siro-assets' README.
attributes:
  # key_prefix: {name}                     # asset keys {name}/recordings, {name}/recording_crm, ...
  key_prefix: {name}
  # partitions_start: "2026-01-01"        # first daily partition (UTC createdAt)
  api:
    # base_url: https://functions.siro.ai/api-externalApi
    token_env: {token_env}{pad}# the variable's name; read when each run or tick starts
    # page_size: 1000
    # requests_per_minute: 1000
    # simulator: {{enabled: true}}          # the built-in simulator instead of Siro's API
  warehouse:
    path: data/{name}.duckdb
    # schema: siro
  # sensor: {{enabled: true, interval_seconds: 60, lookback_seconds: 300}}
  # schedule: {{enabled: true, cron: "15 0 * * *"}}
  # writebacks: {{routing_file: crm_connections.yaml, dry_run: false}}
  # group_names: {{ingest: {name}_ingest, crm: {name}_crm, conversations: {name}_conversations, writebacks: {name}_writebacks}}
  # owners: ["team:revenue-data"]
  # tags: {{}}
"""


def token_env_for(name: str) -> str:
    """The token variable an instance named `name` reads: `siro` keeps the README's
    SIRO_API_TOKEN, any other organization gets its own (`west`: SIRO_WEST_API_TOKEN), so
    two instances never share a token by accident."""
    return "SIRO_API_TOKEN" if name == "siro" else f"SIRO_{name.upper()}_API_TOKEN"


def defs_yaml(type_name: str, name: str) -> str:
    """The scaffolded `defs.yaml` of an instance named `name` (a Python identifier)."""
    token_env = token_env_for(name)
    pad = " " * max(1, 22 - len(token_env))
    return DEFS_YAML.format(type_name=type_name, name=name, token_env=token_env, pad=pad)


class SiroComponentScaffolder(dg.Scaffolder):
    """Writes `defs.yaml` for a new instance named after its folder."""

    def scaffold(self, request: dg.ScaffoldRequest) -> None:
        name = request.target_path.name.replace("-", "_")
        if not name.isidentifier():
            name = "siro"
        request.target_path.mkdir(parents=True, exist_ok=True)
        (request.target_path / "defs.yaml").write_text(
            defs_yaml(request.type_name, name), encoding="utf-8"
        )
