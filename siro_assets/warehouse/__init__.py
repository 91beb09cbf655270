"""The DuckDB warehouse: DDL, the run-private stage and atomic partition swap, connections.

Imports DuckDB and tenacity; never Dagster, HTTP or the API client.
"""
