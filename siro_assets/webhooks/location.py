"""Where one instance's inbox lives: a SQLite file, or a PostgreSQL table named by a DSN variable.

The receiver and the webhook sensor both derive it from the instance's `webhooks:`
attributes and its warehouse path (`InboxLocation.for_instance`), so they always agree.
The DSN holds a password: only the variable's name is kept, it is read when the inbox is
opened, and it never appears in a repr, a message or a log line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .inbox import Inbox, SqliteInbox, inbox_path_for

__all__ = ["InboxLocation", "MissingDsnError"]


class MissingDsnError(RuntimeError):
    """The instance names a DSN variable that is not set (the message names the variable only)."""


@dataclass(frozen=True)
class InboxLocation:
    """A SQLite file (`sqlite_path`) or a PostgreSQL database (`dsn_env`, a variable name)."""

    sqlite_path: Path | None = None
    dsn_env: str | None = None

    def __post_init__(self) -> None:
        if (self.sqlite_path is None) == (self.dsn_env is None):
            raise ValueError("an inbox location is either a SQLite path or a DSN variable")

    @classmethod
    def for_instance(cls, *, inbox_path: str | None, inbox_dsn_env: str | None,
                     warehouse_path: str | Path) -> "InboxLocation":
        """The inbox an instance's `webhooks.inbox_dsn_env` / `inbox_path` select, else the
        SQLite file beside its warehouse."""
        if inbox_dsn_env:
            return cls(dsn_env=inbox_dsn_env)
        return cls(sqlite_path=Path(inbox_path).resolve() if inbox_path else inbox_path_for(warehouse_path))

    @property
    def is_postgres(self) -> bool:
        """Whether the inbox is a PostgreSQL table."""
        return self.dsn_env is not None

    def describe(self) -> str:
        """For logs: the file, or the DSN variable's name (never its value)."""
        return str(self.sqlite_path) if self.sqlite_path else f"PostgreSQL (DSN from {self.dsn_env})"

    def exists(self, environ: Mapping[str, str] = os.environ) -> bool:
        """Whether there may be events: the SQLite file exists, or the DSN variable is set."""
        if self.sqlite_path is not None:
            return self.sqlite_path.exists()
        return bool(environ.get(self.dsn_env or "", "").strip())

    def open(self, *, environ: Mapping[str, str] = os.environ, **options: Any) -> Inbox:
        """Open the inbox (`options`: capacity, retention, now), creating it if needed."""
        if self.sqlite_path is not None:
            return SqliteInbox(self.sqlite_path, **options)
        dsn = environ.get(self.dsn_env or "", "").strip()
        if not dsn:
            raise MissingDsnError(f"set {self.dsn_env} to the webhook inbox's PostgreSQL DSN (libpq)")
        from .pg_inbox import PostgresInbox

        return PostgresInbox(dsn, **options)
