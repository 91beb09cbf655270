"""The simulated Siro organization: a deterministic world that is a pure function of time.

Recording ``i`` of day ``d`` (and everything about it, including a schedule of future events)
is derived from ``random.Random(f"{seed}:{d}:{i}")``. Nothing is stored: the state of a
recording at time ``t`` is its base data with every event ``<= t`` applied, and ``updatedAt``
is the latest applied event. So every process (tests, an HTTP server, a benchmark) that uses
the same :class:`WorldConfig` sees exactly the same world.

Times are handled internally as integer epoch milliseconds, which is the API's precision.
"""

from __future__ import annotations

import functools
import random
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Iterable, Iterator

from .clock import UTC, from_ms, to_ms, to_us
from .content import Organization, stable_hash
from .payload import ENRICHMENTS, recording_payload
from .timeline import DAY_MS, EVENT_KINDS, HOUR_MS, BaseRecording, schedule_events
from .vocabulary import FIRST_NAMES, LAST_NAMES, STREETS, TITLE_TEMPLATES

__all__ = ["World", "WorldConfig", "BaseRecording", "EVENT_KINDS", "ENRICHMENTS"]

_ID_RE = re.compile(r"^rec_(\d{8})_(\d{4,6})_([0-9a-f]{8})$")


@dataclass(frozen=True)
class WorldConfig:
    """Parameters of the simulated world; two worlds with equal configs are identical."""

    seed: int = 7
    recordings_per_day: int = 40
    start_date: date = date(2026, 1, 1)
    max_event_delay: timedelta = timedelta(days=5)
    organization_id: str = "org_sim"
    #: Bulk CRM re-syncs per day: each stamps 30 to 45 recordings of the previous days
    #: with one identical ``updatedAt`` millisecond (a ``resynced`` event). The first of
    #: a day is at 00:00:00.000, the second at 23:59:59.999, the rest anywhere in the day.
    bulk_resyncs_per_day: int = 0


def _day_start_ms(d: date) -> int:
    return to_ms(datetime(d.year, d.month, d.day, tzinfo=UTC))


def _ms_to_date(ms: int) -> date:
    return from_ms(ms).date()


class World:
    """A deterministic simulated organization; see the module docstring.

    Days are generated lazily and cached (``functools.lru_cache``), so a world spanning years
    costs nothing until a query touches a day.
    """

    def __init__(self, config: WorldConfig | None = None) -> None:
        """Build a world from ``config`` (defaults: seed 7, 40 recordings/day from 2026-01-01)."""
        self.config = config or WorldConfig()
        self.max_delay_ms = int(self.config.max_event_delay / timedelta(milliseconds=1))
        self._day_cached = functools.lru_cache(maxsize=2048)(self._generate_day)
        self._resyncs_cached = functools.lru_cache(maxsize=2048)(self._generate_resyncs)
        self.organization = Organization(self.config.seed)

    # ---- days ---------------------------------------------------------------------------
    def day_count(self, d: date) -> int:
        """How many recordings are created on day ``d`` (0 before start_date)."""
        if d < self.config.start_date:
            return 0
        rpd = self.config.recordings_per_day
        if rpd <= 0:
            return 0
        rng = random.Random(f"{self.config.seed}:{d.isoformat()}:count")
        wd = d.weekday()
        factor = 0.45 if wd == 5 else 0.3 if wd == 6 else rng.uniform(0.85, 1.15)
        # At least 2 so the midnight / 23:59:59.999 edge recordings exist every day.
        return max(2, round(rpd * factor))

    def day(self, d: date) -> tuple[BaseRecording, ...]:
        """The base recordings created on day ``d``, sorted by (createdAt, id). Cached."""
        if d < self.config.start_date:
            return ()
        return self._day_cached(d)

    def _generate_day(self, d: date) -> tuple[BaseRecording, ...]:
        n = self.day_count(d)
        seed = self.config.seed
        ds = d.isoformat()
        day0 = _day_start_ms(d)
        drng = random.Random(f"{seed}:{ds}:day")
        # Shared timestamps ("bulk CRM sync", "bulk relink") make updatedAt ties across many
        # recordings, so pagination over updatedAt must cope with equal keys at page edges.
        bulk_link = [day0 + DAY_MS + 2 * HOUR_MS + drng.randrange(3 * HOUR_MS),
                     day0 + 2 * DAY_MS + drng.randrange(DAY_MS)]
        bulk_relink = day0 + 3 * DAY_MS + drng.randrange(DAY_MS)

        created: list[int] = []
        for i in range(n):
            if i == 0:
                c = day0  # exactly 00:00:00.000
            elif i == 1:
                c = day0 + DAY_MS - 1  # exactly 23:59:59.999
            elif i == 3 or (i > 3 and drng.random() < 0.04):
                c = created[i - 1 if i == 3 else drng.randrange(2, i)]  # same-millisecond creation
            else:
                # Business-hours heavy, but spread across the whole day.
                if drng.random() < 0.8:
                    c = day0 + 13 * HOUR_MS + drng.randrange(11 * HOUR_MS) if drng.random() < 0.5 else day0 + 8 * HOUR_MS + drng.randrange(16 * HOUR_MS - 1)
                else:
                    c = day0 + drng.randrange(DAY_MS)
            created.append(c)

        recs = [self._generate_recording(d, i, created[i], bulk_link, bulk_relink) for i in range(n)]
        self._add_resyncs(d, recs)
        recs.sort(key=lambda r: (r.created, r.id))
        return tuple(recs)

    def _generate_recording(self, d: date, i: int, created: int, bulk_link: list[int], bulk_relink: int) -> BaseRecording:
        seed = self.config.seed
        rng = random.Random(f"{seed}:{d.isoformat()}:{i}")
        r = BaseRecording()
        r.day = d
        r.index = i
        r.id = f"rec_{d.strftime('%Y%m%d')}_{i:04d}_{stable_hash(seed, d.isoformat(), i)}"
        r.created = created
        schedule = schedule_events(rng, created, self.max_delay_ms, bulk_link, bulk_relink)
        r.events = schedule.events

        org = self.organization
        user = org.users[rng.randrange(len(org.users))]
        r.user_id = user["userId"]
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        r.title = rng.choice(TITLE_TEMPLATES).format(name=name, n=rng.randrange(1, 9999), street=rng.choice(STREETS))
        r.purged_title_blank = rng.random() < 0.5
        r.duration = rng.randrange(30_000, 2 * HOUR_MS)
        r.lat = round(rng.uniform(25.0, 48.5), 6)
        r.lon = round(rng.uniform(-123.0, -70.0), 6)
        r.result = rng.choices(["OPEN", "WON", "LOST"], weights=[60, 25, 15])[0]
        r.crm = org.crm(rng, user) if schedule.linked is not None else None
        r.crm_relinked = org.relinked_crm(rng, r.crm) if r.crm is not None else None
        r.summary = org.summary(rng, r.id) if schedule.summarized is not None else []
        r.extractions = org.extractions(rng, name) if schedule.extracted is not None else []
        score = rng.uniform(0, 100)
        r.evaluation_score = (rng.choice([int(score), round(score, 1), round(score, 2)]) if rng.random() < 0.85 else None)
        r.followups = org.followups(rng, r.id)
        return r

    # ---- bulk re-syncs --------------------------------------------------------------------
    def _resync_source_days(self) -> int:
        # A re-sync on day D touches recordings of D-1 .. D-k, all created within
        # max_event_delay of it (the listing relies on that bound).
        return max(1, self.max_delay_ms // DAY_MS - 1)

    def resyncs(self, d: date) -> tuple[tuple[int, tuple[tuple[date, int], ...]], ...]:
        """The bulk re-syncs of day ``d``: ``(moment_ms, ((created day, index), ...))``."""
        if self.config.bulk_resyncs_per_day <= 0:
            return ()
        return self._resyncs_cached(d)

    def _generate_resyncs(self, d: date) -> tuple[tuple[int, tuple[tuple[date, int], ...]], ...]:
        rng = random.Random(f"{self.config.seed}:{d.isoformat()}:resync")
        day0 = _day_start_ms(d)
        sources = [d - timedelta(days=k) for k in range(1, self._resync_source_days() + 1)]
        sources = [s for s in sources if s >= self.config.start_date]
        out = []
        for j in range(self.config.bulk_resyncs_per_day):
            moment = day0 if j == 0 else day0 + DAY_MS - 1 if j == 1 else day0 + rng.randrange(DAY_MS)
            picked: set[tuple[date, int]] = set()
            want = rng.randint(30, 45)
            while sources and len(picked) < want:
                src = rng.choice(sources)
                picked.add((src, rng.randrange(self.day_count(src))))
            out.append((moment, tuple(sorted(picked))))
        return tuple(out)

    def _add_resyncs(self, d: date, recs: list[BaseRecording]) -> None:
        if self.config.bulk_resyncs_per_day <= 0:
            return
        by_index = {r.index: r for r in recs}
        for k in range(1, self._resync_source_days() + 1):
            for moment, picked in self.resyncs(d + timedelta(days=k)):
                for src, index in picked:
                    if src == d:
                        by_index[index].events.append((moment, "resynced"))
        for r in recs:
            r.events.sort(key=lambda e: (e[0], EVENT_KINDS.index(e[1])))

    # ---- lookup -----------------------------------------------------------------------
    def base(self, recording_id: str) -> BaseRecording | None:
        """The base recording for an id, or None if the id is not one of this world's."""
        m = _ID_RE.match(recording_id or "")
        if not m:
            return None
        try:
            d = datetime.strptime(m.group(1), "%Y%m%d").date()
        except ValueError:
            return None
        i = int(m.group(2))
        if d < self.config.start_date or i >= self.day_count(d):
            return None
        for r in self.day(d):
            if r.index == i:
                return r if r.id == recording_id else None
        return None

    def iter_days(self, first: date, last: date) -> Iterator[date]:
        """Days from ``max(first, start_date)`` to ``last`` inclusive."""
        d = max(first, self.config.start_date)
        while d <= last:
            yield d
            d += timedelta(days=1)

    # ---- payloads -----------------------------------------------------------------------
    def payload(self, r: BaseRecording, now_ms: int, enrich: Iterable[str] = (), *, detailed_followups: bool = False) -> dict[str, Any]:
        """The API object for ``r`` as of ``now_ms``, with the requested enrichment blocks."""
        return recording_payload(
            r,
            now_ms,
            enrich,
            organization_id=self.config.organization_id,
            followup_detail=self.organization.followup_detail if detailed_followups else None,
        )

    # ---- truth helpers ----------------------------------------------------------------
    def recordings(self, now: datetime, *, created_from: datetime | None = None, created_to: datetime | None = None) -> list[dict[str, Any]]:
        """Full payloads (every enrichment block) of recordings that exist at ``now`` and were
        created in ``[created_from, created_to)``, ordered by (createdAt, id)."""
        now_ms = to_ms(now)
        lo_us = to_us(created_from) if created_from is not None else None
        hi_us = to_us(created_to) if created_to is not None else None
        first = _ms_to_date(lo_us // 1000) if lo_us is not None else self.config.start_date
        last_ms = now_ms if hi_us is None else min(now_ms, hi_us // 1000)
        out = []
        for d in self.iter_days(first, _ms_to_date(last_ms)):
            for r in self.day(d):
                c_us = r.created * 1000
                if r.created > now_ms or (lo_us is not None and c_us < lo_us) or (hi_us is not None and c_us >= hi_us):
                    continue
                out.append(self.payload(r, now_ms, ENRICHMENTS))
        return out

    def recording(self, recording_id: str, now: datetime) -> dict[str, Any] | None:
        """The full payload (every enrichment block) of one recording at ``now``, or None if it
        does not exist (unknown id, or created after ``now``)."""
        r = self.base(recording_id)
        now_ms = to_ms(now)
        if r is None or r.created > now_ms:
            return None
        return self.payload(r, now_ms, ENRICHMENTS)

    def timeline(self, recording_id: str) -> list[tuple[datetime, str]]:
        """Every scheduled event of a recording (past and future), sorted; KeyError if unknown."""
        r = self.base(recording_id)
        if r is None:
            raise KeyError(recording_id)
        return [(from_ms(t), k) for t, k in r.events]

