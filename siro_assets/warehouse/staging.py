"""Staging raw API pages in a run-private DuckDB file, then swapping them in atomically.

Pages go to disk as they arrive (memory stays bounded however large a day is) and are
parsed exactly once, set-wise, by DuckDB's JSON functions into the typed raw-table
shape; the parse also validates the page (JSON syntax, a `data` list of objects) and
hands the fetch loop what it needs of each page (record count, `createdAt` order).
Each staged row is written once here and once more by the swap: `finalize` only picks
the winning version of each id (narrow columns) and exposes them as a view. Only the
swap (`swap.py`) touches the shared warehouse file, in one transaction: a crash or a
kill before its COMMIT leaves the previous partition contents untouched.
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
from .schema import RECORD_JSON_SHAPE, RECORDINGS_COLUMN_NAMES, RECORDINGS_COLUMNS, recordings_ddl
# The swap lives in swap.py; re-exported for callers that import it with the stage.
from .swap import swap_partitions

__all__ = [
    "MalformedPageError",
    "PageParse",
    "RecordingsStage",
    "StageSummary",
    "StagingValidationError",
    "swap_partitions",
]

#: Record numbers within a page stay below this (`seq` = page number x PAGE_SEQ + position).
PAGE_SEQ = 1_000_000


class StagingValidationError(ValueError):
    """The API sent records the warehouse cannot store faithfully: no id, no parsable
    createdAt, or a value of the wrong type in a field the pipeline decides on."""


# What a page that is not a list page makes the parse raise (DuckDB's `error()`); the
# stage turns it, like malformed JSON, into `MalformedPageError`.
_NO_DATA_LIST = 'the page has no "data" list'
_NOT_AN_OBJECT = 'an item of the "data" list is not a JSON object'

_TYPED_SELECT = f"""
WITH page AS (
    -- A batch of page bodies per statement: planning this query costs more than
    -- parsing a page of 100 records, so one statement per page would double the cost.
    SELECT unnest($bodies::VARCHAR[]) AS body,
           $seq::BIGINT + generate_subscripts($bodies::VARCHAR[], 1) AS seq
), parsed_page AS (
    -- The one parse of the page. A body that is not JSON fails the statement here.
    SELECT json_transform(body, '{{"data":["JSON"]}}').data AS data, seq FROM page
), records AS (
    -- `seq` orders every record by arrival: page number, then position in the page.
    SELECT unnest(data) AS r, seq * {PAGE_SEQ} + generate_subscripts(data, 1) AS seq
    FROM (SELECT CASE WHEN data IS NULL THEN error('{_NO_DATA_LIST}') ELSE data END AS data, seq
          FROM parsed_page)
), typed AS (
    -- One json_transform per record into the whole typed shape: each `->>` would
    -- re-parse the record's text, which costs several times more. An element that is
    -- not an object (its JSON text, written by DuckDB, then starts otherwise) fails.
    SELECT CASE WHEN r IS NULL OR left(r, 1) <> '{{' THEN error('{_NOT_AN_OBJECT}') ELSE r END AS r,
           seq, json_transform(r, '{RECORD_JSON_SHAPE}') AS t,
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

# Read back per staged page, so the fetch loop learns each page's size and `createdAt`
# order from the same parse (no second parse of the page in Python). A narrow scan by
# `seq` (zone maps skip the rest), not `INSERT ... RETURNING`: that keeps a copy of the
# whole inserted rows, payloads included, until they are fetched.
_STAGED_CREATED = """
SELECT seq, epoch_ms(created_at) FROM parsed
WHERE seq > $first * {page_seq} AND seq < ($last + 1) * {page_seq}
""".format(page_seq=PAGE_SEQ)


class MalformedPageError(ValueError):
    """A page body that is not valid JSON or not a list page (`{"data": [objects]}`).

    Raised before anything of the page is staged, so the page can be fetched again.
    """


@dataclass(frozen=True)
class PageParse:
    """What the stage learned of one page: its record count and, in page order, the
    records' `createdAt` as epoch ms (records without a parsable one are left out; the
    stage refuses them in `finalize`)."""

    records: int
    created_ms: tuple[int, ...]


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
        memory_limit: str = "128MB",
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

    def add_page(self, body: bytes | str) -> PageParse:
        """Parse one raw list-page body (`{"data": [...], "cursor": ...}`) into the stage.

        Raises `MalformedPageError` (staging nothing) for a body that is not a list page.
        """
        result = self.add_pages([body])[0]
        if isinstance(result, MalformedPageError):
            raise result
        return result

    def add_pages(self, bodies: Sequence[bytes | str]) -> list[PageParse | MalformedPageError]:
        """Parse raw list-page bodies into the stage, in arrival order; one result per body.

        Pages are parsed together in one statement (callers pass a bounded batch, so
        DuckDB's memory holds a few pages at a time however large the day is). A body
        that is not a list page gets a `MalformedPageError` in its place and stages
        nothing; the others are staged.
        """
        texts = [body.decode("utf-8") if isinstance(body, bytes) else body for body in bodies]
        if not texts:
            return []
        first_seq = self._seq
        self._seq += len(texts)  # page numbers in arrival order (a failed batch leaves a gap)
        try:
            self._con.execute(
                f"INSERT INTO parsed {_TYPED_SELECT}",
                {"bodies": texts, "seq": first_seq, "ingested_at": self._ingested_at},
            )
        except (duckdb.OutOfMemoryException, duckdb.InvalidInputException) as exc:
            # The failed statement left nothing behind. Halves need less memory, and a
            # malformed page must not cost its batch-mates their place in the stage.
            if len(texts) == 1:
                if isinstance(exc, duckdb.OutOfMemoryException):
                    raise
                return [MalformedPageError(_page_problem(exc))]
            half = len(texts) // 2
            return self.add_pages(texts[:half]) + self.add_pages(texts[half:])
        returned = self._con.execute(
            _STAGED_CREATED, {"first": first_seq + 1, "last": first_seq + len(texts)}
        ).fetchall()
        created: list[list[tuple[int, int | None]]] = [[] for _ in texts]
        for seq, created_ms in returned:
            created[seq // PAGE_SEQ - first_seq - 1].append((seq, created_ms))
        self.pages += len(texts)
        self.bytes += sum(len(text) for text in texts)
        return [
            PageParse(len(rows), tuple(ms for _, ms in sorted(rows) if ms is not None))
            for rows in created
        ]

    def finalize(self, partitions: Sequence[date]) -> StageSummary:
        """Choose the rows `swap_partitions` takes: the stage's `recordings` view.

        Keeps the newest version of a recording seen twice, and keeps only recordings
        whose createdAt falls in one of `partitions` (the windows that were asked for).
        Reads narrow columns only: the wide rows are copied once, by the swap.
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
        con.execute("DROP VIEW IF EXISTS recordings")
        con.execute("DROP TABLE IF EXISTS winners")
        # The newest version of each id wins (then the one that arrived last). Chosen on
        # narrow columns, so the wide payloads are never sorted or held in a window:
        # that is what keeps memory flat for very large days.
        con.execute(
            """
            CREATE TABLE winners AS
            SELECT arg_max(seq, (coalesce(updated_at, '-infinity'::TIMESTAMPTZ), seq)) AS seq,
                   arg_max(partition_date, (coalesce(updated_at, '-infinity'::TIMESTAMPTZ), seq))
                       AS partition_date
            FROM parsed
            WHERE partition_date IN (SELECT unnest($partitions::DATE[]))
            GROUP BY id
            """,
            {"partitions": list(partitions)},
        )
        # A view, not a copy: the swap reads the winning rows straight from `parsed`.
        columns = ", ".join(f"p.{c}" for c in RECORDINGS_COLUMN_NAMES)
        con.execute(
            f"CREATE VIEW recordings AS SELECT {columns} FROM parsed AS p "
            "SEMI JOIN winners AS w ON p.seq = w.seq"
        )
        in_window = con.execute(
            "SELECT count(*) FROM parsed WHERE partition_date IN (SELECT unnest($p::DATE[]))",
            {"p": list(partitions)},
        ).fetchone()[0]
        by_partition = dict(
            con.execute(
                "SELECT partition_date, count(*) FROM winners GROUP BY 1 ORDER BY 1"
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


def _page_problem(exc: duckdb.Error) -> str:
    """DuckDB's message for a body it could not stage, without its long preamble."""
    text = str(exc).removeprefix("Invalid Input Error: ")
    return text if len(text) <= 300 else text[:300] + "..."


def raw_table_sql() -> tuple[str, ...]:
    """The texts that decide `siro.recordings`' rows: the typed parse, its JSON shape, the DDL.

    Hashed into the raw asset's code version, so a change here marks old partitions stale.
    """
    return (_TYPED_SELECT, RECORD_JSON_SHAPE, recordings_ddl())
