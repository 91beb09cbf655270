"""Pure bookkeeping for the `updatedAt` sensor: the cursor, deduplication, grouping.

No Dagster here, so every edge case (ties at the watermark, late-visible changes,
bursts over many days) is tested without a Dagster instance.

How it fits together, per tick:

1. ``query_start(cursor, now, lookback)`` is the ``updatedAt:gte`` bound to list from:
   ``watermark - lookback``, or ``now - lookback`` on the very first tick.
2. The sensor lists every recording updated since then, cheaply, and feeds
   ``(id, createdAt, updatedAt)`` triples to ``plan_changes``.
3. ``plan_changes`` drops the ``(id, updatedAt)`` pairs the cursor says were already
   requested (``updatedAt:gte`` is inclusive, and the lookback re-lists on purpose),
   groups the rest by the UTC day of ``createdAt``, and returns the next cursor.
4. ``ChangePlan.ranges(max_runs)`` merges the changed days into at most ``max_runs``
   day ranges; each range becomes one run whose key names the days, the newest
   ``updatedAt`` and a hash of the exact changes, so a later change to the same days is
   a new key while a repeated tick produces the same key.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from ...api_client.timestamps import format_ts, parse_ts

__all__ = [
    "CURSOR_VERSION",
    "ChangePlan",
    "ChangeRange",
    "InvalidSensorCursor",
    "PartitionChanges",
    "SensorCursor",
    "group_days",
    "plan_changes",
    "query_start",
    "run_key_for",
]

CURSOR_VERSION = 1

Pair = tuple[str, datetime]
"""One observed change: (recording id, its updatedAt)."""

RESET_HINT = (
    "Reset it with `dagster sensor cursor recordings_updated_sensor --delete` "
    "(the next tick starts from now minus the lookback) or `--set` a valid cursor."
)


class InvalidSensorCursor(ValueError):
    """The stored sensor cursor is not one this code wrote (hand-edited or corrupted)."""


def _utc(dt: datetime, what: str) -> datetime:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {dt.isoformat()}")
    return dt.astimezone(timezone.utc)


@dataclass(frozen=True)
class SensorCursor:
    """What the sensor remembers between ticks.

    ``watermark`` is the newest ``updatedAt`` the sensor has observed (None until the
    API has returned anything). ``seen`` holds the ``(id, updatedAt)`` pairs already
    requested whose ``updatedAt`` is inside the lookback window below the watermark:
    exactly the pairs the next listing can return again, so nothing older needs
    remembering. ``since`` is the first tick's start (``now - lookback``): a floor for
    the listing, kept only while ``watermark - lookback`` is still below it, so that
    neither an idle first tick nor an early first change makes the sensor reach
    further back than where it started.
    """

    watermark: datetime | None = None
    seen: frozenset[Pair] = field(default_factory=frozenset)
    since: datetime | None = None

    def to_json(self) -> str:
        """Compact JSON: ``{"v": 1, "watermark": ts, "seen": {updatedAt: [ids]}}`` (+ ``"since"``).

        Pairs are grouped by ``updatedAt`` because ties (bulk CRM syncs) are common, and
        everything is sorted so equal cursors serialise identically.
        """
        by_ts: dict[str, list[str]] = defaultdict(list)
        for rid, updated in self.seen:
            by_ts[format_ts(updated)].append(rid)
        doc = {
            "v": CURSOR_VERSION,
            "watermark": format_ts(self.watermark) if self.watermark is not None else None,
            "seen": {ts: sorted(ids) for ts, ids in sorted(by_ts.items())},
        }
        if self.since is not None:
            doc["since"] = format_ts(self.since)
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=True)

    @classmethod
    def from_json(cls, raw: str | None) -> SensorCursor:
        """Parse a stored cursor; ``None`` or blank (no cursor yet, or cleared) is the first tick.

        Blank counts as cleared because the Dagster UI's cursor dialog saves an emptied
        text box as ``""``. Anything else that is not a cursor written by ``to_json``
        raises ``InvalidSensorCursor`` naming how to reset it: guessing a starting point
        would silently skip or replay changes.
        """
        if raw is None or not raw.strip():
            return cls()
        try:
            doc = json.loads(raw)
            if not isinstance(doc, dict) or doc.get("v") != CURSOR_VERSION:
                raise ValueError(f"expected an object with \"v\": {CURSOR_VERSION}")
            wm_raw = doc.get("watermark")
            watermark = parse_ts(wm_raw) if wm_raw is not None else None
            since_raw = doc.get("since")
            since = parse_ts(since_raw) if since_raw is not None else None
            seen_raw = doc.get("seen") or {}
            if not isinstance(seen_raw, Mapping):
                raise ValueError("\"seen\" must be an object of updatedAt -> [ids]")
            seen: set[Pair] = set()
            for ts, ids in seen_raw.items():
                if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                    raise ValueError(f"\"seen\"[{ts!r}] must be a list of ids")
                updated = parse_ts(ts)
                seen.update((rid, updated) for rid in ids)
        except (ValueError, TypeError) as exc:
            shown = raw if len(raw) <= 120 else raw[:117] + "..."
            raise InvalidSensorCursor(f"Unreadable sensor cursor {shown!r}: {exc}. {RESET_HINT}") from exc
        if watermark is None and seen:
            raise InvalidSensorCursor(f"Sensor cursor has ids but no watermark: {raw[:120]!r}. {RESET_HINT}")
        return cls(watermark=watermark, seen=frozenset(seen), since=since)


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
    """

    first_day: date
    last_day: date
    newest_updated_at: datetime
    pairs: tuple[Pair, ...]
    changed_days: tuple[date, ...]

    @property
    def count(self) -> int:
        """How many (id, updatedAt) changes this run covers."""
        return len(self.pairs)

    @property
    def run_key(self) -> str:
        """``first..last@newestUpdatedAt#hash``; see ``run_key_for``."""
        return run_key_for(self.first_day, self.last_day, self.newest_updated_at, self.pairs)


def run_key_for(first_day: date, last_day: date, newest: datetime, pairs: Iterable[Pair]) -> str:
    """A run key that is the same for the same changes and new for any new change.

    Dagster remembers sensor run keys forever, so a key per day alone would silently
    drop every later change to that day; the newest ``updatedAt`` plus a hash of the
    exact ``(id, updatedAt)`` set make each distinct batch of changes its own key.
    """
    lines = sorted(f"{rid}@{format_ts(updated)}" for rid, updated in pairs)
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()[:10]
    return f"{first_day.isoformat()}..{last_day.isoformat()}@{format_ts(newest)}#{digest}"


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
        out = []
        for first, last in group_days(self.partitions, max_runs):
            parts = [p for d, p in sorted(self.partitions.items()) if first <= d <= last]
            out.append(
                ChangeRange(
                    first_day=first,
                    last_day=last,
                    newest_updated_at=max(p.newest_updated_at for p in parts),
                    pairs=tuple(pair for p in parts for pair in p.pairs),
                    changed_days=tuple(p.day for p in parts),
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
    start = cursor.watermark - lookback
    return max(start, cursor.since) if cursor.since is not None else start


def plan_changes(
    cursor: SensorCursor,
    changed: Iterable[tuple[str, datetime, datetime]],
    now: datetime,
    lookback: timedelta,
    *,
    first_day: date | None = None,
    last_day: date | None = None,
) -> tuple[ChangePlan, SensorCursor]:
    """Deduplicate one listing against the cursor and group it by ``createdAt`` day.

    ``changed`` is every ``(id, createdAt, updatedAt)`` the listing from
    ``query_start(cursor, now, lookback)`` returned. Days before ``first_day`` or after
    ``last_day`` (the partitions definition's bounds) are counted in ``skipped``. Days
    before ``first_day`` are marked seen, so they are reported once rather than on every
    tick; days after ``last_day`` are not, so that the lookback requests them once the
    partition exists (Siro's clock may run slightly ahead of Dagster's).

    The new cursor's watermark is the newest ``updatedAt`` observed, never lower than
    the old one and never beyond what the API actually returned: a change stamped later
    than anything listed so far can therefore not be skipped. Until something is
    observed, the cursor keeps the first tick's start (``since``) instead, so an idle
    sensor neither drifts forward with the clock nor reaches back into history. The seen
    set keeps only pairs the next listing can return again
    (``updatedAt >= new watermark - lookback``).
    """
    start = query_start(cursor, now, lookback)
    listed = duplicates = 0
    fresh: dict[Pair, date] = {}
    newest_observed: datetime | None = None
    for rid, created_at, updated_at in changed:
        listed += 1
        updated_at = _utc(updated_at, "updatedAt")
        created_at = _utc(created_at, "createdAt")
        if newest_observed is None or updated_at > newest_observed:
            newest_observed = updated_at
        pair = (rid, updated_at)
        if pair in cursor.seen or pair in fresh:
            duplicates += 1
            continue
        fresh[pair] = created_at.date()

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

    candidates = [w for w in (cursor.watermark, newest_observed) if w is not None]
    watermark = max(candidates) if candidates else None
    since = cursor.since if cursor.watermark is not None else start
    if since is not None and watermark is not None and watermark - lookback >= since:
        since = None  # the watermark alone now keeps the listing at or after it
    floor = watermark - lookback if watermark is not None else start
    seen = frozenset(p for p in (*cursor.seen, *fresh) if p[1] >= floor and p not in not_yet)

    plan = ChangePlan(
        query_start=start,
        partitions=partitions,
        listed=listed,
        duplicates=duplicates,
        skipped=dict(sorted(skipped.items())),
    )
    return plan, SensorCursor(watermark=watermark, seen=seen, since=since)
