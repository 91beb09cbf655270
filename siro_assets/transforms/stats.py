"""One row of headline numbers per day (`recording_daily_stats`), for consumers and the UI.

Counts come straight from `siro.recordings` so they do not depend on the other derived
tables having been rebuilt first. Every requested partition gets a row, even a day with
no recordings, so a plotted series shows a zero rather than a gap.
"""

from __future__ import annotations

from .table import PARTITION_DATE, Column, DerivedTable

_SELECT = f"""
WITH days AS (
    SELECT DISTINCT unnest($partitions::DATE[]) AS partition_date
),
r AS (
    SELECT partition_date, deleted, root_data_purged_at, crm, summary,
           entity_extractions, duration_ms,
           deleted IS NOT TRUE AND root_data_purged_at IS NULL AS live
    FROM recordings
    WHERE partition_date IN (SELECT partition_date FROM days)
),
counts AS (
    SELECT
        d.partition_date,
        count(r.partition_date) AS recordings,
        count(*) FILTER (WHERE r.deleted) AS deleted,
        count(*) FILTER (WHERE r.root_data_purged_at IS NOT NULL) AS purged,
        count(*) FILTER (WHERE r.live) AS active,
        count(*) FILTER (WHERE r.live AND r.crm IS NOT NULL) AS linked,
        count(*) FILTER (WHERE r.live AND len(r.summary) > 0) AS summarised,
        coalesce(sum(len(r.entity_extractions)) FILTER (WHERE r.live), 0) AS extractions,
        avg(r.duration_ms) FILTER (WHERE r.live) AS mean_duration_ms
    FROM days AS d LEFT JOIN r USING (partition_date)
    GROUP BY d.partition_date
)
SELECT partition_date, recordings, deleted, purged, active,
       linked, linked / nullif(active, 0),
       summarised, summarised / nullif(active, 0),
       extractions, mean_duration_ms
FROM counts
"""

RECORDING_DAILY_STATS = DerivedTable(
    name="recording_daily_stats",
    description=(
        "One row per day (UTC day of createdAt): how many recordings were created, how many "
        "of them are deleted or purged, and for the active ones (neither) the share linked "
        "to a CRM, the share with a summary, the number of entity extractions and the mean "
        "duration. Join `partition_date` to siro.recordings.partition_date."
    ),
    columns=(
        PARTITION_DATE,
        Column("recordings", "BIGINT NOT NULL", "Recordings created that day, including deleted and purged.",
               ("partition_date",)),
        Column("deleted", "BIGINT NOT NULL", "Of those, flagged deleted.", ("deleted",)),
        Column("purged", "BIGINT NOT NULL", "Of those, with rootDataPurgedAt set (may overlap deleted).",
               ("root_data_purged_at",)),
        Column("active_recordings", "BIGINT NOT NULL",
               "Neither deleted nor purged: the population of the columns below.",
               ("deleted", "root_data_purged_at")),
        Column("linked_recordings", "BIGINT NOT NULL", "Active recordings with a CRM link (crm not null).",
               ("crm", "deleted", "root_data_purged_at")),
        Column("linked_share", "DOUBLE", "linked_recordings / active_recordings; NULL when none active.",
               ("crm", "deleted", "root_data_purged_at")),
        Column("summarised_recordings", "BIGINT NOT NULL", "Active recordings with at least one summary section.",
               ("summary", "deleted", "root_data_purged_at")),
        Column("summarised_share", "DOUBLE", "summarised_recordings / active_recordings; NULL when none active.",
               ("summary", "deleted", "root_data_purged_at")),
        Column("extraction_count", "BIGINT NOT NULL",
               "Entity extractions of active recordings (extractions, not mapping rows).",
               ("entity_extractions", "deleted", "root_data_purged_at")),
        Column("mean_duration_ms", "DOUBLE", "Mean durationInMilliseconds of active recordings; NULL when none.",
               ("duration_ms", "deleted", "root_data_purged_at")),
    ),
    select=_SELECT,
    per_recording=False,
)
