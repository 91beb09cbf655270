"""The DuckDB warehouse: DDL, the run-private stage, the lost-value guard, the merging
partition swap, the warehouse's organization, connections and the writer lock.

Imports DuckDB, tenacity and filelock; never Dagster, HTTP or the API client.
"""
