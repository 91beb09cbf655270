"""What a derived warehouse table is: its name, columns, and the SELECT that rebuilds it.

Every derived table is rebuilt from `siro.recordings` one set of daily partitions at a
time, so each carries `partition_date` (the UTC day of the recording's `createdAt`,
the same key as the raw table) and each SELECT takes the partitions to rebuild as the
named parameter `$partitions` (a list of dates).

List positions (`position`, `mapping_position`) are 0-based everywhere: they are the
index of the element in the API's JSON array (`summary[0]` has position 0), so a
consumer holding the API payload finds the same element at the same index.

Lists are exploded with `unnest(list)` next to `generate_subscripts(list, 1)` in the
same SELECT list (they advance in lockstep): DuckDB runs that as a plain streaming
unnest, whereas `unnest(...) WITH ORDINALITY` plans a window and was ~40x slower on
300k recordings.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass



@dataclass(frozen=True)
class Column:
    """One column of a derived table: name, DuckDB type, what it holds, and where it comes from.

    `sources` names the columns of `siro.recordings` whose values this column is computed
    from (its column lineage). Columns used only to choose rows (`deleted`,
    `root_data_purged_at` in `live_recordings`) are not sources of every column.
    """

    name: str
    sql_type: str
    description: str
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class DerivedTable:
    """A derived table in an instance's schema and the set-wise SELECT that fills it.

    `select` must produce exactly `columns`, in order, for the partitions given as the
    `$partitions` parameter (DATE[]) and nothing else: `rebuild_partitions` deletes
    those partitions and inserts what `select` returns.
    """

    name: str
    description: str
    columns: tuple[Column, ...]
    select: str
    per_recording: bool = True
    """True when every row belongs to one recording (has a `recording_id`)."""

    def in_schema(self, schema: str) -> str:
        """`<schema>.<name>`: the name a reader outside the pipeline queries (catalogs,
        check descriptions); the pipeline's own SQL says just `name`, in the connection's
        schema."""
        return f"{schema}.{self.name}"


    @property
    def column_names(self) -> tuple[str, ...]:
        """The column names in table order."""
        return tuple(column.name for column in self.columns)

    def fingerprint(self) -> str:
        """A short hash of what decides the table's rows: its columns and its SELECT.

        Equal across runs and machines; it changes whenever the SQL or a column does,
        so it can version the table (Dagster marks partitions built by older SQL stale).
        """
        return sql_fingerprint(self.ddl(), self.select)

    def ddl(self) -> str:
        """CREATE TABLE IF NOT EXISTS statement for this table."""
        columns = ",\n    ".join(f"{c.name} {c.sql_type}" for c in self.columns)
        return f"CREATE TABLE IF NOT EXISTS {self.name} (\n    {columns}\n)"


def sql_fingerprint(*parts: str) -> str:
    """First 12 hex digits of sha256 over SQL texts, taken exactly as written.

    Exact text on purpose: a re-indented query only costs a rebuild, whereas normalising
    whitespace could hide a changed string literal.
    """
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:12]


PARTITION_DATE = Column(
    "partition_date",
    "DATE NOT NULL",
    "UTC day of the recording's createdAt; the daily partition this row was built for.",
    ("partition_date",),
)
RECORDING_ID = Column(
    "recording_id",
    "VARCHAR NOT NULL",
    "Siro recording id; joins to siro.recordings.id.",
    ("id",),
)


def live_recordings(*columns: str) -> str:
    """SELECT of the requested partitions' recordings that are neither deleted nor purged.

    Only the listed columns are read: the raw table's `payload` column (the whole JSON
    object) is never touched, so no derived table pays for re-parsing it. `deleted IS NOT
    TRUE` keeps recordings whose flag is missing (NULL), which the API does not delete.
    """
    wanted = ", ".join(("id", "partition_date", *columns))
    return f"""
    SELECT {wanted}
    FROM recordings
    WHERE partition_date IN (SELECT unnest($partitions::DATE[]))
      AND deleted IS NOT TRUE
      AND root_data_purged_at IS NULL
    """
