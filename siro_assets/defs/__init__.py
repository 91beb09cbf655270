"""What `dg` loads for this project: one `SiroComponent` instance per folder (`siro/defs.yaml`).

Only YAML and what Dagster loads lives here; the code the component builds its
definitions from is `siro_assets.pipeline`, and the component itself `siro_assets.component`.
"""
