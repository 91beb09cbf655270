"""The assets derived from `siro/recordings`, one per table in `siro_assets.transforms`."""
