"""Pure bookkeeping for the `updatedAt` sensor: deduplication, grouping, run keys.

No Dagster here, so every edge case (ties at the watermark, late-visible changes,
bursts over many days) is tested without a Dagster instance.

How it fits together, per tick:

1. ``query_start(cursor, now, lookback)`` is the ``updatedAt:gte`` bound to list from:
   ``watermark - lookback``, or ``now - lookback`` on the very first tick.
2. The sensor lists the recordings updated since then in ``updatedAt`` chunks within
   a time and page budget (``backlog_walk.py``) and feeds the ``(id, createdAt,
   updatedAt)`` triples of the chunks it listed completely to ``plan_changes``, with
   the end of the last complete chunk as ``listed_through``.
3. ``plan_changes`` drops the ``(id, updatedAt)`` pairs the cursor says were already
   requested (``updatedAt:gte`` is inclusive, and the lookback re-lists on purpose),
   groups the rest by the UTC day of ``createdAt``, and returns the next cursor.
4. ``build_ranges`` merges the changed days, and the pending days due for another
   request (``pending_runs.py``), into at most ``max_runs`` day ranges; each range
   becomes one run whose key names the days, the newest ``updatedAt`` and a hash of the
   exact changes (and re-requests), so a later change to the same days is a new key
   while a repeated tick produces the same key.

The cursor itself lives in ``sensor_cursor.py`` (re-exported here).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import cached_property
from datetime import date, datetime, timedelta, timezone

from ..api_client.timestamps import format_ts
from .sensor_cursor import (
    BULK_SECOND,
    CURSOR_VERSION,
    Bucket,
    InvalidSensorCursor,
    Pair,
    PendingRequest,
    SensorCursor,
    bucket_of,
    pair_hash,
)

__all__ = [
    "SEEN_CAP",
    "CURSOR_VERSION",
    "ChangePlan",
    "ChangeRange",
    "InvalidSensorCursor",
    "PartitionChanges",
    "SensorCursor",
    "build_ranges",
    "group_days",
    "plan_changes",
    "query_start",
    "run_key_for",
]


# Most pairs the cursor lists one by one (~30 bytes each in its JSON); past it the
# densest seconds become ``bulk`` buckets, at most one per second of the lookback.
SEEN_CAP = 1000


def _utc(dt: datetime, what: str) -> datetime:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {dt.isoformat()}")
    return dt.astimezone(timezone.utc)

@dataclass(frozen=True)
class PartitionChanges:
    """The new changes that map to one day partition."""

    day: date
    newest_updated_at: datetime
    pairs: tuple[Pair, ...]

    @property
    def count(self) -> int:
        """How many (id, updatedAt) changes landed in this day."""
        return len(self.pairs)


@dataclass(frozen=True)
class ChangeRange:
    """Consecutive day partitions (``first_day``..``last_day``, both included) for one run.

    The range may include days without changes when ``ranges()`` had to merge across
    gaps to stay within the run budget; re-pulling such a day is harmless.
    ``retried`` are the pending days this run requests again (their earlier run
    failed); ``newest_updated_at`` is None when the range holds only such days.
    """

    first_day: date
    last_day: date
    newest_updated_at: datetime | None
    pairs: tuple[Pair, ...]
    changed_days: tuple[date, ...]
    retried: Mapping[date, PendingRequest] = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.retried is None:
            object.__setattr__(self, "retried", {})

    @property
    def requested_days(self) -> tuple[date, ...]:
        """The days this run must cover: changed days and re-requested days."""
        return tuple(sorted({*self.changed_days, *self.retried}))

    @property
    def count(self) -> int:
        """How many (id, updatedAt) changes this run covers."""
        return len(self.pairs)

    @cached_property
    def run_key(self) -> str:
        """``first..last@newestUpdatedAt#hash``; see ``run_key_for``."""
        return run_key_for(self.first_day, self.last_day, self.newest_updated_at, self.pairs, self.retried)


def run_key_for(
    first_day: date,
    last_day: date,
    newest: datetime | None,
    pairs: Iterable[Pair],
    retried: Mapping[date, PendingRequest] | None = None,
) -> str:
    """A run key that is the same for the same changes and new for any new change.

    Dagster remembers sensor run keys forever, so a key per day alone would silently
    drop every later change to that day; the newest ``updatedAt`` plus a hash of the
    exact ``(id, updatedAt)`` set make each distinct batch of changes its own key.
    A re-requested day adds its earlier request's key and the new attempt number to the
    hash, so a re-request is a new key (Dagster would drop the old one) while a repeated
    tick still produces the same key.
    """
    lines = sorted(f"{rid}@{format_ts(updated)}" for rid, updated in pairs)
    lines += sorted(f"retry:{d.isoformat()}:{p.key}:{p.attempt + 1}" for d, p in (retried or {}).items())
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()[:10]
    stamp = format_ts(newest) if newest is not None else "retry"
    return f"{first_day.isoformat()}..{last_day.isoformat()}@{stamp}#{digest}"


def group_days(days: Iterable[date], max_runs: int) -> list[tuple[date, date]]:
    """Cover ``days`` with at most ``max_runs`` ranges of consecutive days.

    Consecutive days always share a range. If there are still too many ranges, the two
    neighbours with the smallest gap are merged (earliest first on ties), which adds the
    fewest unchanged days to the runs.
    """
    if max_runs < 1:
        raise ValueError(f"max_runs must be >= 1, got {max_runs}")
    ordered = sorted(set(days))
    ranges: list[list[date]] = []
    for d in ordered:
        if ranges and (d - ranges[-1][1]).days <= 1:
            ranges[-1][1] = d
        else:
            ranges.append([d, d])
    while len(ranges) > max_runs:
        gaps = [(ranges[i + 1][0] - ranges[i][1]).days for i in range(len(ranges) - 1)]
        i = gaps.index(min(gaps))
        ranges[i : i + 2] = [[ranges[i][0], ranges[i + 1][1]]]
    return [(a, b) for a, b in ranges]


@dataclass(frozen=True)
class ChangePlan:
    """The outcome of one tick's listing.

    ``partitions`` maps each day (of ``createdAt``) to its new changes. ``listed`` counts
    every row the listing returned, ``duplicates`` those already requested earlier (or
    repeated within this listing), and ``skipped`` the new changes per day that fall
    outside the partitions definition and so cannot be requested.
    """

    query_start: datetime
    partitions: Mapping[date, PartitionChanges]
    listed: int
    duplicates: int
    skipped: Mapping[date, int]

    @property
    def change_count(self) -> int:
        """New changes that will be requested."""
        return sum(p.count for p in self.partitions.values())

    def ranges(self, max_runs: int) -> list[ChangeRange]:
        """The changed days as at most ``max_runs`` ranges, oldest first."""
        return build_ranges(self.partitions, {}, max_runs)


def build_ranges(
    partitions: Mapping[date, PartitionChanges],
    retried: Mapping[date, PendingRequest],
    max_runs: int,
) -> list[ChangeRange]:
    """Changed days and re-requested days as at most ``max_runs`` ranges, oldest first."""
    out = []
    for first, last in group_days([*partitions, *retried], max_runs):
        parts = [p for d, p in sorted(partitions.items()) if first <= d <= last]
        out.append(
            ChangeRange(
                first_day=first,
                last_day=last,
                newest_updated_at=max((p.newest_updated_at for p in parts), default=None),
                pairs=tuple(pair for p in parts for pair in p.pairs),
                changed_days=tuple(p.day for p in parts),
                retried={d: r for d, r in sorted(retried.items()) if first <= d <= last},
            )
        )
    return out


def query_start(cursor: SensorCursor, now: datetime, lookback: timedelta) -> datetime:
    """The ``updatedAt:gte`` bound for this tick.

    ``watermark - lookback`` re-lists a short overlap on purpose, so a change that
    becomes visible in the API after a later one was already listed is still caught. The
    first tick starts at ``now - lookback`` (history is the backfill's job), and no later
    tick starts before that (``cursor.since``).
    """
    if lookback < timedelta(0):
        raise ValueError(f"lookback must not be negative, got {lookback}")
    if cursor.watermark is None:
        return cursor.since if cursor.since is not None else _utc(now, "now") - lookback
    start = _floor(cursor.watermark - lookback, cursor.bulk)
    return max(start, cursor.since) if cursor.since is not None else start


def _floor(start: datetime, bulk) -> datetime:
    """``start``, or the start of its second if that second is a ``bulk`` bucket: a
    bucket is recognised only when it is listed again whole."""
    return bucket_of(start) if bucket_of(start) in bulk else start


def plan_changes(
    cursor: SensorCursor,
    changed: Iterable[tuple[str, datetime, datetime]],
    now: datetime,
    lookback: timedelta,
    *,
    first_day: date | None = None,
    last_day: date | None = None,
    listed_through: datetime | None = None,
) -> tuple[ChangePlan, SensorCursor]:
    """Deduplicate one listing against the cursor and group it by ``createdAt`` day.

    ``changed`` is every ``(id, createdAt, updatedAt)`` the listing from
    ``query_start(cursor, now, lookback)`` returned. Days before ``first_day`` or after
    ``last_day`` (the partitions definition's bounds) are counted in ``skipped``. Days
    before ``first_day`` are marked seen, so they are reported once rather than on every
    tick; days after ``last_day`` are not, so that the lookback requests them once the
    partition exists (Siro's clock may run slightly ahead of Dagster's).

    The new cursor's watermark is the newest ``updatedAt`` observed, or
    ``listed_through`` (the end of the last ``updatedAt`` chunk that was listed
    completely, when the listing was cut into chunks) if that is later; never lower than
    the old one and never beyond what the API actually returned or covered: a change
    stamped later than anything listed so far can therefore not be skipped. Until something is
    observed, the cursor keeps the first tick's start (``since``) instead, so an idle
    sensor neither drifts forward with the clock nor reaches back into history. The seen
    set keeps only pairs the next listing can return again
    (``updatedAt >= new watermark - lookback``), one per id (its newest), and at most
    ``SEEN_CAP``: past that the densest seconds are folded into ``bulk`` buckets (count
    and hash of their pairs). A re-listed second that matches its bucket is all
    duplicates; one that does not is requested again whole, so a change is never taken
    for a duplicate (at worst a second's pairs are requested twice).
    """
    start = query_start(cursor, now, lookback)
    listed = duplicates = 0
    fresh: dict[Pair, date] = {}
    newest_observed: datetime | None = None
    seen_max = _newest_per_id(cursor.seen)
    # Pairs in a second the cursor keeps as a bulk bucket: they are duplicates only if,
    # together, they are exactly the set the bucket counted.
    in_bucket: dict[datetime, dict[Pair, date]] = defaultdict(dict)
    for rid, created_at, updated_at in changed:
        listed += 1
        updated_at = _utc(updated_at, "updatedAt")
        created_at = _utc(created_at, "createdAt")
        if newest_observed is None or updated_at > newest_observed:
            newest_observed = updated_at
        pair = (rid, updated_at)
        second = bucket_of(updated_at)
        if (rid in seen_max and updated_at <= seen_max[rid]) or pair in fresh or pair in in_bucket.get(second, ()):
            duplicates += 1
            continue
        if second in cursor.bulk:
            in_bucket[second][pair] = created_at.date()
            continue
        fresh[pair] = created_at.date()
    mismatched = set()
    for second, pairs in in_bucket.items():
        if pairs and _bucket(pairs) == cursor.bulk[second]:
            duplicates += len(pairs)
        elif pairs:
            # Something in this second changed (a late-visible change, or one moved on):
            # request every pair listed in it again rather than guess which one is new.
            mismatched.add(second)
            fresh.update(pairs)

    by_day: dict[date, list[Pair]] = defaultdict(list)
    skipped: dict[date, int] = defaultdict(int)
    not_yet: set[Pair] = set()
    for pair, day in fresh.items():
        if (first_day is not None and day < first_day) or (last_day is not None and day > last_day):
            skipped[day] += 1
            if last_day is not None and day > last_day:
                # A day Dagster's clock has not reached yet (Siro's clock runs a little
                # ahead): leave it unseen so the lookback lists it again once it exists.
                not_yet.add(pair)
        else:
            by_day[day].append(pair)
    partitions = {
        day: PartitionChanges(
            day=day,
            newest_updated_at=max(u for _, u in pairs),
            pairs=tuple(sorted(pairs, key=lambda p: (p[1], p[0]))),
        )
        for day, pairs in sorted(by_day.items())
    }

    candidates = [w for w in (cursor.watermark, newest_observed, listed_through) if w is not None]
    watermark = max(candidates) if candidates else None
    since = cursor.since if cursor.watermark is not None else start
    if since is not None and watermark is not None and watermark - lookback >= since:
        since = None  # the watermark alone now keeps the listing at or after it
    nominal = watermark - lookback if watermark is not None else start
    bulk = {t: b for t, b in cursor.bulk.items() if t not in mismatched and t + BULK_SECOND > nominal}
    floor = _floor(nominal, bulk)
    newest = _newest_per_id(p for p in (*cursor.seen, *fresh) if p[1] >= floor and p not in not_yet)
    seen, bulk = _bounded(newest, bulk)

    plan = ChangePlan(
        query_start=start,
        partitions=partitions,
        listed=listed,
        duplicates=duplicates,
        skipped=dict(sorted(skipped.items())),
    )
    return plan, replace(cursor, watermark=watermark, seen=seen, since=since, bulk=bulk)


def _newest_per_id(pairs: Iterable[Pair]) -> dict[str, datetime]:
    # A listing returns a recording's current updatedAt, never an older one, so the
    # newest pair per id is all that can be listed again.
    out: dict[str, datetime] = {}
    for rid, updated in pairs:
        if rid not in out or updated > out[rid]:
            out[rid] = updated
    return out


def _bucket(pairs: Iterable[Pair]) -> Bucket:
    count = digest = 0
    for pair in pairs:
        count += 1
        digest ^= pair_hash(pair)
    return count, digest


def _bounded(newest: Mapping[str, datetime], bulk: Mapping[datetime, Bucket]):
    """``seen`` of at most ``SEEN_CAP`` pairs, the densest seconds folded into ``bulk``."""
    if len(newest) <= SEEN_CAP:
        return frozenset(newest.items()), dict(bulk)
    by_second: dict[datetime, list[Pair]] = defaultdict(list)
    for rid, updated in newest.items():
        by_second[bucket_of(updated)].append((rid, updated))
    out = dict(bulk)
    kept = len(newest)
    for second, pairs in sorted(by_second.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        if kept <= SEEN_CAP:
            break
        n, h = _bucket(pairs)
        old_n, old_h = out.get(second, (0, 0))
        out[second] = (old_n + n, old_h ^ h)
        kept -= len(pairs)
        del by_second[second]
    return frozenset(p for pairs in by_second.values() for p in pairs), out
