"""`run_requests_for`: the sensor's run requests for its ranges of changed or due days,
tagged so the sensor can read their outcome back and the run knows what to fetch."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime

from dagster import RunRequest

from ...api_client.timestamps import format_ts
from ...changes.change_tracking import ChangeRange
from ..ingest.refresh import UPDATED_SINCE_TAG
from ..partitions import partition_key
from .dagster_gaps import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from .run_status import REQUEST_TAG

CHANGES_TAG = "siro/changes"
NEWEST_UPDATED_AT_TAG = "siro/newest_updated_at"
CHANGED_DAYS_TAG = "siro/changed_days"
RETRIED_DAYS_TAG = "siro/retried_days"


def _since_for(r: ChangeRange, owed: Mapping[date, datetime | None]) -> datetime | None:
    """Where a changes-only run lists from: its oldest change, or the oldest change a
    still-pending day among its days owes (None: one of them owes the whole day)."""
    since = min(updated for _, updated in r.pairs)
    for day in r.changed_days:
        if day in owed:
            if owed[day] is None:
                return None
            since = min(since, owed[day])
    return since


def run_requests_for(
    ranges: Iterable[ChangeRange], owed: Mapping[date, datetime | None] | None = None
) -> list[RunRequest]:
    """One run request per range of days: a single day by `partition_key`, several days
    as one run over a partition range (the `dagster/asset_partition_range_*` tags; every
    asset in `siro_recordings_job` processes a whole range in one run). The run key is
    also the `siro/request` tag, which the run's automatic retries inherit, so the
    sensor can tell later whether the request succeeded. A range of new changes only
    also carries `siro/updated_since`, so its run fetches just the changed recordings:
    from its oldest change, or from the oldest change ``owed`` (`pending_runs.owed_since`)
    by a day still pending, since this run replaces that day's request."""
    owed = owed or {}
    requests = []
    for r in ranges:
        tags = {
            REQUEST_TAG: r.run_key,
            CHANGES_TAG: str(r.count),
            CHANGED_DAYS_TAG: str(len(r.changed_days)),
        }
        if r.newest_updated_at is not None:
            tags[NEWEST_UPDATED_AT_TAG] = format_ts(r.newest_updated_at)
        if r.retried:
            tags[RETRIED_DAYS_TAG] = ",".join(partition_key(d) for d in r.retried)
        elif r.pairs and (since := _since_for(r, owed)) is not None:
            # Only changes: the run fetches what was updated since the oldest of them and
            # upserts it (pipeline/ingest/refresh.py). A day requested again after a failed
            # run has no such bound and is re-pulled whole.
            tags[UPDATED_SINCE_TAG] = format_ts(since)
        if r.first_day == r.last_day:
            requests.append(RunRequest(run_key=r.run_key, partition_key=partition_key(r.first_day), tags=tags))
        else:
            tags[PARTITION_RANGE_START_TAG] = partition_key(r.first_day)
            tags[PARTITION_RANGE_END_TAG] = partition_key(r.last_day)
            requests.append(RunRequest(run_key=r.run_key, tags=tags))
    return requests
