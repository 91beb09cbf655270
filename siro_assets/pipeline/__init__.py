"""What Dagster loads (`load_from_defs_folder`): ingestion, derived tables, writebacks, automation, checks, resources.

May import every other subpackage of `siro_assets`; nothing outside `defs/` imports from here
except `siro_assets.definitions`.
"""
