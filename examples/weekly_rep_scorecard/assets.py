"""The consumer's own asset: `rep_scorecards/weekly_rep_scorecard`, one partition per ISO week."""

# No `from __future__ import annotations`: Dagster inspects the real annotation objects.
import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AutomationCondition,
    Output,
    WeeklyPartitionsDefinition,
    asset,
)

from .scorecard import build_scorecard

# The read-only pandas input manager the Siro component offers for its own warehouse
# (`<key_prefix>_pandas_reader`): partition-aligned DataFrames, never a write.
READER = "siro_pandas_reader"
RECORDING_CRM = AssetKey(["siro", "recording_crm"])
EXTRACTIONS = AssetKey(["siro", "recording_entity_extractions"])

# Monday-to-Sunday weeks in UTC; each week depends on its seven daily siro partitions
# (Dagster's default time-window mapping between time-partitioned assets).
weekly_partitions = WeeklyPartitionsDefinition(start_date="2026-01-05", day_offset=1, timezone="UTC")

# eager(): request a week when any of its days is re-materialized (the siro sensor
# refreshes days whose recordings changed), once no day is missing or in progress.
# eager() alone only looks at the *latest* week; late CRM links, deletions and purges
# land in older days, so that sub-condition is removed and every week can refresh.
# (The first evaluation then also fills weeks whose seven days all exist but which were
# never built.)
refresh_when_any_day_changes = AutomationCondition.eager().without(
    AutomationCondition.in_latest_time_window()
)


@asset(
    key=AssetKey(["rep_scorecards", "weekly_rep_scorecard"]),
    partitions_def=weekly_partitions,
    ins={
        "recording_crm": AssetIn(RECORDING_CRM, input_manager_key=READER),
        "extractions": AssetIn(EXTRACTIONS, input_manager_key=READER),
    },
    automation_condition=refresh_when_any_day_changes,
    io_manager_key="scorecard_io_manager",
    # On a DuckDB file, reading holds the file too: share the pool with the siro writers,
    # so this run never overlaps one of theirs. (On a lake a reader never blocks a writer;
    # the pool then only orders runs.)
    pool="siro_duckdb",
    # The output is stored partitioned too (in the consumer's own DuckDB file).
    metadata={"partition_expr": "week_start"},
    group_name="rep_scorecards",
    kinds={"pandas", "duckdb"},
)
def weekly_rep_scorecard(
    context: AssetExecutionContext, recording_crm: pd.DataFrame, extractions: pd.DataFrame
) -> Output[pd.DataFrame]:
    """Per CRM user and ISO week: recordings, share linked to an opportunity, top extracted values."""
    window = context.partition_time_window
    card = build_scorecard(recording_crm, extractions)
    card.insert(0, "week_start", pd.Timestamp(window.start.replace(tzinfo=None)))
    days = pd.to_datetime(recording_crm["partition_date"]) if len(recording_crm) else pd.Series([], dtype="datetime64[ns]")
    context.log.info(f"{len(recording_crm)} recording(s) in {window.start:%Y-%m-%d}..{window.end:%Y-%m-%d}")
    return Output(
        card,
        metadata={
            "dagster/row_count": len(card),
            "input_recordings": len(recording_crm),
            "input_extraction_rows": len(extractions),
            "first_input_day": str(days.min().date()) if len(days) else "",
            "last_input_day": str(days.max().date()) if len(days) else "",
        },
    )

