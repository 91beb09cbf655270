"""AI summary sections of each recording, one row per section (`recording_summaries`)."""

from __future__ import annotations

from .table import PARTITION_DATE, RECORDING_ID, Column, DerivedTable, live_recordings

_SELECT = f"""
WITH sections AS (
    SELECT partition_date, id, generate_subscripts(summary, 1) - 1 AS position,
           unnest(summary) AS section
    FROM ({live_recordings("summary")})
)
SELECT partition_date, id, position, section.id, section.name, section.content
FROM sections
WHERE section IS NOT NULL
"""

RECORDING_SUMMARIES = DerivedTable(
    name="recording_summaries",
    description=(
        "One row per section of a recording's AI summary, in the API's order (`position`, "
        "0-based). Join `recording_id` to siro.recordings.id; order by `position` to read a "
        "summary top to bottom. Recordings without a summary yet have no rows."
    ),
    columns=(
        PARTITION_DATE,
        RECORDING_ID,
        Column("position", "INTEGER NOT NULL", "0-based index of the section in the summary.",
               ("summary",)),
        Column("section_id", "VARCHAR", "Summary section id.", ("summary",)),
        Column("name", "VARCHAR", "Section title (the prompt header).", ("summary",)),
        Column("content", "VARCHAR", "Generated summary text, unmodified.", ("summary",)),
    ),
    select=_SELECT,
)
