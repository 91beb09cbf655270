"""Staging raw API pages in a run-private DuckDB file, then swapping them in atomically.

Pages go to disk as they arrive (memory stays bounded however large a day is) and are
parsed once, set-wise, by DuckDB's JSON functions into the typed raw-table shape. Only
the final swap (`swap.py`) touches the shared warehouse file, in one transaction: a
crash or a kill before its COMMIT leaves the previous partition contents untouched.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb

from .lost_values import lost_values_sql, raw_types_sql
from .schema import (
    RECORD_JSON_SHAPE,
    RECORDINGS_COLUMN_NAMES,
    RECORDINGS_COLUMNS,
    recordings_ddl,
)
# The swap lives in swap.py; re-exported for callers that import it with the stage.
from .swap import swap_partitions

__all__ = ["RecordingsStage", "StageSummary", "StagingValidationError", "swap_partitions"]


class StagingValidationError(ValueError):
    """The API sent records the warehouse cannot store faithfully: no id, no parsable
    createdAt, or a value of the wrong type in a field the pipeline decides on."""


_TYPED_SELECT = f"""
WITH page AS (
    SELECT $body::VARCHAR AS body, $seq::BIGINT AS seq
), parsed_page AS (
    SELECT json_transform(body, '{{"data":["JSON"]}}').data AS data, seq FROM page
), records AS (
    -- `seq` orders every record by arrival: page number, then position in the page.
    SELECT unnest(data) AS r, seq * 1000000 + generate_subscripts(data, 1) AS seq
    FROM parsed_page
), typed AS (
    -- One json_transform per record into the whole typed shape: each `->>` would
    -- re-parse the record's text, which costs several times more.
    SELECT r, seq, json_transform(r, '{RECORD_JSON_SHAPE}') AS t,
           {raw_types_sql('r')} AS raw
    FROM records
), shaped AS (
SELECT
    t.id                                           AS id,
    t.organizationId                               AS organization_id,
    t.userId                                       AS user_id,
    t.title                                        AS title,
    t.durationInMilliseconds                       AS duration_ms,
    t.latitude                                     AS latitude,
    t.longitude                                    AS longitude,
    t.result                                       AS result,
    TRY_CAST(t.createdAt AS TIMESTAMPTZ)           AS created_at,
    TRY_CAST(t.updatedAt AS TIMESTAMPTZ)           AS updated_at,
    t.deleted                                      AS deleted,
    TRY_CAST(t.deletedAt AS TIMESTAMPTZ)           AS deleted_at,
    TRY_CAST(t.rootDataPurgedAt AS TIMESTAMPTZ)    AS root_data_purged_at,
    t.isProcessingDone                             AS is_processing_done,
    t.isEntityExtractionDone                       AS is_entity_extraction_done,
    t.isSummaryDone                                AS is_summary_done,
    t.evaluationScore                              AS evaluation_score,
    t.links.web.self                               AS web_url,
    t.crm                                          AS crm,
    t.summary                                      AS summary,
    t.entityExtractions                            AS entity_extractions,
    r                                              AS payload,
    CAST(TRY_CAST(t.createdAt AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS DATE) AS partition_date,
    $ingested_at::TIMESTAMPTZ                      AS ingested_at,
    seq,
    raw,
    t
FROM typed
)
-- The lost-value guard (lost_values.py) compares typed values with raw JSON types.
SELECT * EXCLUDE (raw, t), {lost_values_sql('payload', 'raw')} AS lost_values FROM shaped
"""

@dataclass(frozen=True)
class StageSummary:
    """What a finished stage holds, for metadata and sanity checks."""

    rows: int
    duplicates_dropped: int
    outside_window: int
    rows_by_partition: dict[date, int]


class RecordingsStage:
    """A run-private DuckDB file that collects raw page bodies for one or more partitions.

    Use as a context manager; the file is deleted on exit whether or not the swap happened.
    """

    def __init__(
        self,
        directory: str | Path | None = None,
        *,
        memory_limit: str = "256MB",
        ingested_at: datetime | None = None,
    ) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="siro-stage-", dir=directory))
        self.path = self._dir / "stage.duckdb"
        # DuckDB would otherwise cache up to 80% of RAM; past the limit it spills to the
        # stage's own temp directory, so a huge day costs disk, not memory.
        self._con = duckdb.connect(
            str(self.path), config={"memory_limit": memory_limit, "preserve_insertion_order": False}
        )
        self._con.execute("SET TimeZone = 'UTC'")
        # Keys stay nullable here so that a record without one is reported clearly by
        # `finalize` rather than as a constraint violation in the middle of a page.
        columns = ", ".join(
            f"{name} {sql_type.replace(' NOT NULL', '')}" for name, sql_type in RECORDINGS_COLUMNS
        )
        self._con.execute(f"CREATE TABLE parsed ({columns}, seq BIGINT, lost_values VARCHAR[])")
        self._ingested_at = ingested_at or datetime.now(timezone.utc)
        self._seq = 0
        self.pages = 0
        self.bytes = 0

    def __enter__(self) -> RecordingsStage:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def add_page(self, body: bytes | str, *, window_start: date) -> None:
        """Parse one raw list-page body (`{"data": [...], "cursor": ...}`) into the stage.

        Each page is parsed as it arrives, so DuckDB's memory holds one page at a time
        however large the day is. `window_start` is the day the page was listed for.
        """
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        self._seq += 1
        self._con.execute(
            f"INSERT INTO parsed {_TYPED_SELECT}",
            {"body": text, "seq": self._seq, "ingested_at": self._ingested_at},
        )
        self.pages += 1
        self.bytes += len(text)

    def finalize(self, partitions: Sequence[date]) -> StageSummary:
        """Build the stage's `recordings` table, ready for `swap_partitions`.

        Keeps the newest version of a recording seen twice, and keeps only recordings
        whose createdAt falls in one of `partitions` (the windows that were asked for).
        """
        con = self._con
        bad = con.execute(
            "SELECT count(*) FILTER (WHERE id IS NULL), count(*) FILTER (WHERE created_at IS NULL) FROM parsed"
        ).fetchone()
        if bad[0] or bad[1]:
            raise StagingValidationError(
                f"The API returned {bad[0]} recording(s) without an id and {bad[1]} without a "
                "parsable createdAt; refusing to write a partition that would lose them."
            )
        lost = con.execute(
            """
            SELECT field, count(*), list(id ORDER BY id)[:5]
            FROM (SELECT id, unnest(lost_values) AS field FROM parsed)
            GROUP BY field ORDER BY field
            """
        ).fetchall()
        if lost:
            detail = "; ".join(f"{field}: {n} recording(s), e.g. {ids}" for field, n, ids in lost)
            raise StagingValidationError(
                "The API sent values of an unexpected type (or unparsable timestamps) that the "
                f"typed columns would store as NULL ({detail}). Refusing to write the partition; "
                "the previous rows are kept. Inspect the raw pages or update the schema."
            )
        total = con.execute("SELECT count(*) FROM parsed").fetchone()[0]
        con.execute("DROP TABLE IF EXISTS recordings")
        con.execute(recordings_ddl("recordings"))
        columns = ", ".join(RECORDINGS_COLUMN_NAMES)
        # The newest version of each id wins (then the one that arrived last). Chosen on
        # narrow columns and joined back, so the wide payloads are never sorted or held
        # in a window: that is what keeps memory flat for very large days.
        con.execute(
            f"""
            WITH winners AS (
                SELECT id, arg_max(seq, (coalesce(updated_at, '-infinity'::TIMESTAMPTZ), seq)) AS seq
                FROM parsed
                WHERE partition_date IN (SELECT unnest($partitions::DATE[]))
                GROUP BY id
            )
            INSERT INTO recordings ({columns})
            SELECT {", ".join(f"p.{c}" for c in RECORDINGS_COLUMN_NAMES)}
            FROM parsed AS p JOIN winners AS w ON p.id = w.id AND p.seq = w.seq
            """,
            {"partitions": list(partitions)},
        )
        in_window = con.execute(
            "SELECT count(*) FROM parsed WHERE partition_date IN (SELECT unnest($p::DATE[]))",
            {"p": list(partitions)},
        ).fetchone()[0]
        by_partition = dict(
            con.execute(
                "SELECT partition_date, count(*) FROM recordings GROUP BY 1 ORDER BY 1"
            ).fetchall()
        )
        rows = sum(by_partition.values())
        con.execute("CHECKPOINT")
        return StageSummary(
            rows=rows,
            duplicates_dropped=in_window - rows,
            outside_window=total - in_window,
            rows_by_partition=by_partition,
        )

    def sealed_path(self) -> Path:
        """Close the stage's own connection so another connection can ATTACH its file."""
        self._con.close()
        return self.path

    def close(self) -> None:
        """Close the stage connection and delete its file."""
        try:
            self._con.close()
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)


def raw_table_sql() -> tuple[str, ...]:
    """The texts that decide `siro.recordings`' rows: the typed parse, its JSON shape, the DDL.

    Hashed into the raw asset's code version, so a change here marks old partitions stale.
    """
    return (_TYPED_SELECT, RECORD_JSON_SHAPE, recordings_ddl())
