"""Dagster run tags this project reads or sets that `dagster` 1.13 exports no public name for.

The partition tags are the documented way to launch one run over a partition range
(dagster-io/dagster#10441 introduced them as user-set run tags), and asset checks and
the sensor read them back off a run; their constants live only in the private
`dagster._core.storage.tags`. A maintainer suggested a `DagsterRun` helper to parse them
(review of dagster-io/dagster#18305), not shipped as of 1.13.27. Nothing else may spell a
`dagster/` run tag (`tests/unit/test_dagster_gaps.py`); when Dagster exports these, import
them here instead.

Retries need no private tag: `DagsterRun.is_complete_and_waiting_to_retry` is public.
Tests that fake an automatic retry still set `WILL_RETRY_TAG`, so it is named here too.
"""

from __future__ import annotations

__all__ = ["PARTITION_RANGE_END_TAG", "PARTITION_RANGE_START_TAG", "PARTITION_TAG", "WILL_RETRY_TAG"]

PARTITION_TAG = "dagster/partition"
PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"
# Set by Dagster on a failed run its auto-retry will re-execute (tests fake it).
WILL_RETRY_TAG = "dagster/will_retry"
