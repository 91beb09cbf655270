"""siro-assets: Siro's recordings API as daily-partitioned DuckDB tables, with Dagster."""

import warnings

# `backfill_policy` is marked beta in Dagster 1.13, and single-run backfills are how this
# project runs ranges on purpose; one warning per asset at every load is only noise.
warnings.filterwarnings("ignore", message=r"Parameter `backfill_policy`", module=r"dagster\..*")
