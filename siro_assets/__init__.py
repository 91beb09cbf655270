"""siro-assets: Siro's recordings API as daily-partitioned DuckDB tables, with Dagster.

`SiroComponent` is exported here so that `type: siro_assets.SiroComponent` works in a
`defs.yaml` and `dg list components` finds it (the `dagster_dg_cli.registry_modules`
entry point names this package). It is imported on first use, so that the Dagster-free
parts (the API client, the simulator's server) start without importing Dagster.
"""

import warnings

# `backfill_policy` is marked beta in Dagster 1.13, and single-run backfills are how this
# project runs ranges on purpose; one warning per asset at every load is only noise.
warnings.filterwarnings("ignore", message=r"Parameter `backfill_policy`", module=r"dagster\..*")

__all__ = ["SiroComponent"]


def __getattr__(name: str):
    if name == "SiroComponent":
        from .component import SiroComponent

        return SiroComponent
    raise AttributeError(f"module 'siro_assets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
