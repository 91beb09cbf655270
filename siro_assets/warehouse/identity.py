"""Which Siro organization a warehouse file belongs to.

The organization of the first token that wrote an instance's schema is recorded in
`siro_meta.organization` (schema `siro`) or `siro_meta.organization_<schema>` (any
other), so two instances sharing one file each hold their own. A token for another
organization must then fail before it writes anything: its recordings would otherwise
sit beside the first organization's, and its swaps would delete theirs.
"""

from __future__ import annotations

from datetime import datetime, timezone

import duckdb

from .connection import DEFAULT_SCHEMA
from .tables import table_exists

META_SCHEMA = "siro_meta"
ORGANIZATION_TABLE = f"{META_SCHEMA}.organization"


def organization_table(con: duckdb.DuckDBPyConnection) -> str:
    """The table recording the organization of `con`'s schema (the one warehouses
    written before schemas were configurable keep for `siro`)."""
    schema = con.execute("SELECT current_schema()").fetchone()[0]
    return ORGANIZATION_TABLE if schema == DEFAULT_SCHEMA else f"{ORGANIZATION_TABLE}_{schema}"


class OrganizationMismatchError(RuntimeError):
    """The token acts for another organization than the one whose data the warehouse holds."""


def recorded_organization(con: duckdb.DuckDBPyConnection) -> str | None:
    """The organization id recorded in the warehouse, or None for a warehouse never written."""
    table = organization_table(con)
    if not table_exists(con, table):
        return None
    row = con.execute(f"SELECT organization_id FROM {table} LIMIT 1").fetchone()
    return row[0] if row else None


def check_organization(recorded: str | None, organization_id: str, database: str = "the warehouse") -> None:
    """Raise `OrganizationMismatchError` naming both organizations if they differ."""
    if recorded is not None and recorded != organization_id:
        raise OrganizationMismatchError(
            f"{database} holds recordings of Siro organization {recorded!r}, but the API token "
            f"acts for organization {organization_id!r}. Nothing was written. Use a token of "
            f"{recorded!r}, or point SIRO_DUCKDB_PATH at another file for {organization_id!r}."
        )


def claim_organization(con: duckdb.DuckDBPyConnection, organization_id: str) -> None:
    """Inside the caller's write transaction: record `organization_id` on the first write,
    or raise `OrganizationMismatchError` if the warehouse belongs to another one."""
    table = organization_table(con)
    # Only the first write creates: every swap claims, and on a lake even an IF NOT EXISTS
    # statement inside the transaction is a catalog step other writers can conflict with.
    if not table_exists(con, table):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {META_SCHEMA}")
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {table} "
            "(organization_id VARCHAR NOT NULL, recorded_at TIMESTAMPTZ NOT NULL)"
        )
    recorded = recorded_organization(con)
    check_organization(recorded, organization_id)
    if recorded is None:
        con.execute(
            f"INSERT INTO {table} VALUES (?, ?)",
            [organization_id, datetime.now(timezone.utc)],
        )
