"""The weekly rep scorecard, twice: over pandas DataFrames and as DuckDB SQL.

Per CRM user (a recording's `user_external_ids`; recordings with no CRM user count under
`(no CRM user)`): how many recordings, the share of them linked to an opportunity, and
the most frequent extracted values (`name=value (count)`). No Dagster here.
"""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd

NO_USER = "(no CRM user)"
TOP_VALUES = 3
COLUMNS = ["crm_user", "recordings", "opportunity_linked_share", "top_extracted_values"]


def _top_values(pairs: pd.DataFrame) -> pd.Series:
    counts = pairs.groupby(["crm_user", "label"]).size().rename("n").reset_index()
    counts = counts.sort_values(["crm_user", "n", "label"], ascending=[True, False, True])
    top = counts.groupby("crm_user").head(TOP_VALUES)
    return top.groupby("crm_user").apply(
        lambda g: ", ".join(f"{label} ({n})" for label, n in zip(g["label"], g["n"])), include_groups=False
    )


def build_scorecard(recording_crm: pd.DataFrame, extractions: pd.DataFrame) -> pd.DataFrame:
    """The scorecard from `siro.recording_crm` and `siro.recording_entity_extractions` rows."""
    users = recording_crm[["recording_id", "user_external_ids", "opportunity_external_id"]].copy()
    users["crm_user"] = users["user_external_ids"].map(lambda ids: list(ids) if len(ids) else [NO_USER])
    users = users.explode("crm_user")
    card = users.groupby("crm_user").agg(
        recordings=("recording_id", "nunique"),
        opportunity_linked_share=("opportunity_external_id", lambda s: float(s.notna().mean())),
    )
    # One row per (recording, extraction): the table repeats an extraction per CRM mapping.
    values = extractions.drop_duplicates(["recording_id", "position"])
    values = values[values["value_text"].notna() & values["name"].notna()]
    pairs = values.merge(users[["recording_id", "crm_user"]], on="recording_id")
    pairs = pairs.assign(label=pairs["name"] + "=" + pairs["value_text"])
    card["top_extracted_values"] = _top_values(pairs) if len(pairs) else ""
    card["top_extracted_values"] = card["top_extracted_values"].fillna("")
    card["opportunity_linked_share"] = card["opportunity_linked_share"].round(4)
    return card.reset_index().sort_values("crm_user", ignore_index=True)[COLUMNS]


SCORECARD_SQL = f"""
WITH users AS (
    SELECT recording_id, opportunity_external_id,
           unnest(CASE WHEN len(user_external_ids) = 0 THEN ['{NO_USER}'] ELSE user_external_ids END)
               AS crm_user
    FROM siro.recording_crm
    WHERE partition_date BETWEEN $first AND $last
),
extracted AS (
    SELECT DISTINCT recording_id, position, name || '=' || value_text AS label
    FROM siro.recording_entity_extractions
    WHERE partition_date BETWEEN $first AND $last AND value_text IS NOT NULL AND name IS NOT NULL
),
counted AS (
    SELECT u.crm_user, v.label, count(*) AS n
    FROM extracted v JOIN users u USING (recording_id)
    GROUP BY ALL
),
ranked AS (
    SELECT *, row_number() OVER (PARTITION BY crm_user ORDER BY n DESC, label) AS rank FROM counted
),
top AS (
    SELECT crm_user, string_agg(label || ' (' || n || ')', ', ' ORDER BY rank) AS top_extracted_values
    FROM ranked WHERE rank <= {TOP_VALUES}
    GROUP BY crm_user
)
SELECT crm_user,
       count(DISTINCT recording_id) AS recordings,
       round(avg((opportunity_external_id IS NOT NULL)::INT), 4) AS opportunity_linked_share,
       coalesce(any_value(top_extracted_values), '') AS top_extracted_values
FROM users LEFT JOIN top USING (crm_user)
GROUP BY crm_user
ORDER BY crm_user
"""


def scorecard_relation(con: duckdb.DuckDBPyConnection, first: date, last: date) -> duckdb.DuckDBPyRelation:
    """The same scorecard as a DuckDB relation over days `first`..`last` (both included).

    For users who stay in DuckDB: open the warehouse with `read_only=True`, run this (or
    `SCORECARD_SQL` directly), fetch, and close the connection.
    """
    return con.sql(SCORECARD_SQL, params={"first": first, "last": last})
