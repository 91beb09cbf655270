"""List an `updatedAt` backlog in chunks, within one tick's time and page budget.

Dagster cancels a sensor evaluation after 60 s and keeps the old cursor, so a tick
that tries to list a large backlog in one go never finishes and the backlog only grows.
The walk cuts ``[start, now]`` into consecutive ``updatedAt`` chunks ``[lo, hi)``
(``updatedAt:gte`` / ``updatedAt:lt``, so a millisecond shared by many recordings never
straddles two chunks). Only what is known to be complete counts; ``listed_through`` is
the point the watermark may move to. The chunk reaching ``now`` has no upper bound, so
an idle tick is still one request.

A chunk cut short (budget spent, API error, or grown past its share) is usable only if
the listing came back in ``updatedAt`` order: then every row before the last
millisecond seen is complete, and the walk goes on from that millisecond (``gte`` is
inclusive, so recordings sharing it across a page boundary are listed again whole).
The API documents no order, so the order is checked on every row; a listing out of
order makes a cut chunk worthless, so then chunks stay small: each is sized from the
measured density (rows per millisecond) to 2 % of the tick, may use at most what is
left of a tenth of the tick for pages it would have to drop, and a millisecond that the
rows seen show to be crowded (a bulk re-sync) is listed as a chunk of its own. No Dagster here;
the page source and the clock are injected.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

__all__ = ["DEFAULT_SPAN", "MAX_SPAN", "MIN_SPAN", "TickBudget", "Walk", "walk_backlog"]

Row = tuple[str, datetime, datetime]
"""(recording id, createdAt, updatedAt)."""

PageSource = Callable[[datetime, datetime | None], Iterable[tuple[list[Row], bool]]]
"""``list_pages(lo, hi)`` yields ``(rows, more_pages_follow)`` for ``lo <= key < hi``."""

MIN_SPAN = timedelta(milliseconds=1)  # the API's timestamp precision
MAX_SPAN = timedelta(days=7)
DEFAULT_SPAN = timedelta(hours=1)
# How much wider than the last chunk the next one may be: quick to widen over sparse
# history, without one huge leap into a dense stretch.
MAX_GROWTH = 16
# Share of a tick's pages that may go on pages that are then dropped.
MAX_DROPPED_SHARE = 0.10
# An unordered chunk aims at this share of the tick's pages (at most half the drop allowance,
# so a chunk twice as dense as measured still fits it).
CHUNK_SHARE = 0.02


def updated_at(row: Row) -> datetime:
    """The key the sensor's main walk chunks on."""
    return row[2]


@dataclass(frozen=True)
class TickBudget:
    """How much listing one tick may do: ``seconds`` after which no page is started,
    and at most ``pages`` pages (retries inside the client count as one page)."""

    seconds: float
    pages: int

    def __post_init__(self) -> None:
        if self.seconds <= 0 or self.pages < 1:
            raise ValueError(f"a tick budget needs seconds > 0 and pages >= 1, got {self}")

    @property
    def target_pages(self) -> int:
        """Pages an unordered chunk aims at before any latency is measured."""
        return max(1, math.floor(self.pages * CHUNK_SHARE))


@dataclass
class Walk:
    """What one tick's walk listed.

    ``rows`` come from complete chunks and from the ordered part of cut ones.
    ``listed_through`` is the end of what is known complete (None if nothing is);
    ``reached_now`` says the unbounded last chunk was listed too, i.e. the backlog is
    drained. ``stopped`` is why the walk ended early (None when it reached now),
    ``error`` the API error that ended it. ``abandoned_pages`` counts pages none of whose
    rows could be kept; ``ordered`` is whether the listings came back in key order
    (None: no listing had two pages). ``tie_at`` is set when a single millisecond
    (``[tie_at, tie_at + 1 ms)``) held more than the whole budget could list: the sensor
    then walks that millisecond by ``createdAt`` instead (see ``sensors.py``).
    """

    rows: list[Row] = field(default_factory=list)
    listed_through: datetime | None = None
    reached_now: bool = False
    span: timedelta = DEFAULT_SPAN
    pages: int = 0
    chunks: int = 0
    abandoned_pages: int = 0
    ordered: bool | None = None
    stopped: str | None = None
    error: Exception | None = None
    tie_at: datetime | None = None


def _clamp(span: timedelta) -> timedelta:
    return max(MIN_SPAN, min(MAX_SPAN, span))


def _ms(width: timedelta) -> float:
    return width / MIN_SPAN


def _span_ms(ms: float) -> timedelta:
    # Whole milliseconds, since that is all the API can filter on.
    return _clamp(timedelta(milliseconds=max(1, math.floor(ms))))


@dataclass
class _Chunk:
    """One listing ``[lo, hi)`` as it comes in, page by page."""

    lo: datetime
    hi: datetime | None
    key: Callable[[Row], datetime]
    pages: list[list[Row]] = field(default_factory=list)
    ordered: bool = True
    complete: bool = False
    _last: datetime | None = None

    def add(self, rows: list[Row]) -> None:
        self.pages.append(rows)
        for row in rows:
            k = self.key(row)
            if self._last is not None and k < self._last:
                self.ordered = False
            self._last = k

    @property
    def all_at_lo(self) -> bool:
        """Every row listed so far has the chunk's lower bound as its key."""
        return self._last is not None and self.ordered and self._last <= self.lo

    def crowded(self, page_rows: int) -> list[datetime]:
        """Keys that a quarter of a page of the rows seen share: a bulk re-sync, likely more."""
        counts = Counter(self.key(r) for r in self.rows)
        return [k for k, n in counts.items() if n >= max(2, page_rows // 4)]

    @property
    def rows(self) -> list[Row]:
        return [row for page in self.pages for row in page]

    def usable_prefix(self) -> tuple[datetime, list[Row], int] | None:
        """For an ordered chunk cut short: ``(through, rows below it, pages dropped)``.

        ``through`` is the last key seen; rows sharing it may go on in the next page,
        so they are dropped and listed again from ``through`` on. None if nothing is
        usable (out of order, or every row shares the chunk's lower bound).
        """
        if not self.ordered or self._last is None or self._last <= self.lo:
            return None
        through = self._last
        kept = [row for row in self.rows if self.key(row) < through]
        dropped = sum(1 for page in self.pages if page and all(self.key(r) >= through for r in page))
        return through, kept, dropped


def walk_backlog(
    list_pages: PageSource,
    start: datetime,
    now: datetime,
    span: timedelta | None,
    budget: TickBudget,
    clock: Callable[[], float],
    *,
    errors: tuple[type[Exception], ...] = (),
    key: Callable[[Row], datetime] = updated_at,
) -> Walk:
    """List ``key >= start`` chunk by chunk until ``now`` or the budget is spent.

    ``clock`` is a monotonic seconds counter (``time.monotonic`` in the sensor, a fake
    one in tests). An exception of a type in ``errors`` ends the walk with what is known
    complete; of the chunk it interrupted, only an ordered prefix is kept. ``key`` is
    the timestamp ``list_pages`` filters on (``updatedAt`` unless told otherwise).
    """
    begun = clock()
    walk = Walk(span=_clamp(span or DEFAULT_SPAN))
    lo = start
    page_rows = 0  # the most rows a page with more to follow carried: the server's cap
    density: float | None = None  # rows per millisecond, from the last measured stretch
    # After an unbounded chunk was cut, the next try must be bounded (narrower), even
    # though it ends close to now; the watermark then moves only to its end.
    force_bounded = False
    # Milliseconds that rows of a cut chunk showed to hold at least a page by themselves.
    crowded_ms: set[datetime] = set()

    def remaining_pages() -> int:
        elapsed = clock() - begun
        if elapsed >= budget.seconds:
            return 0
        left = budget.pages - walk.pages
        if walk.pages and elapsed > 0:
            left = min(left, math.floor((budget.seconds - elapsed) / (elapsed / walk.pages)))
        return max(left, 0)

    def tick_pages() -> int:
        return walk.pages + remaining_pages()

    def allowance() -> int:
        """Pages an unordered chunk may still risk: what is left of the drop share (one
        at least, so that the walk goes on, aiming at half a page)."""
        return max(1, math.floor(tick_pages() * MAX_DROPPED_SHARE) - walk.abandoned_pages)

    def target_rows() -> float:
        # Half the allowance at most, so a chunk twice as dense as measured still fits it.
        pages = max(0.5, min(math.floor(tick_pages() * CHUNK_SHARE), allowance() // 2))
        return pages * max(page_rows, 1)

    def aim(rows: int, width: timedelta) -> None:
        """Measure the density of a listed stretch and size the next chunk from it."""
        nonlocal density
        if rows:
            density = rows / max(_ms(width), 1)
            walk.span = _span_ms(min(target_rows() / density, _ms(width) * MAX_GROWTH))
        elif width > timedelta(0):
            walk.span = _span_ms(max(_ms(walk.span), _ms(width) * MAX_GROWTH))

    while True:
        available = remaining_pages()
        if available <= 0:
            walk.stopped = "budget spent"
            return walk
        crowded = min((c for c in crowded_ms if c >= lo), default=None)
        if crowded == lo:
            hi: datetime | None = lo + MIN_SPAN  # a crowded millisecond, alone and uncapped
        elif walk.ordered:
            hi = None if not force_bounded else lo + walk.span  # ordered: a cut costs nothing
        else:
            hi = lo + walk.span
            if hi >= now and not force_bounded:
                hi = None  # the chunk reaching now is unbounded: nothing newer can be missed
        if crowded is not None and crowded > lo and (hi is None or hi > crowded):
            hi = crowded
        chunk = _Chunk(lo, hi, key)
        try:
            for page, more in list_pages(lo, hi):
                walk.pages += 1
                chunk.add(page)
                if more:
                    page_rows = max(page_rows, len(page))
                else:
                    chunk.complete = True
                    break
                if remaining_pages() <= 0:
                    break
                # A single millisecond cannot be narrowed: it may use the whole budget.
                if hi is not None and hi - lo <= MIN_SPAN:
                    continue
                if chunk.ordered and (len(chunk.pages) >= 2 or walk.ordered):
                    # In order so far: cutting it later keeps all but its last millisecond.
                    walk.ordered = True if walk.ordered is None else walk.ordered
                    continue
                if not chunk.ordered:
                    walk.ordered = False
                # Out of order (or not known yet): this chunk is worthless if cut, so it may
                # not outgrow twice its target, nor what is left of the drop allowance.
                # Until some listing has shown its order, two pages, so that one can.
                cap = min(allowance(), 2 * math.ceil(target_rows() / max(page_rows, 1)))
                if len(chunk.pages) >= max(cap, 2 if walk.ordered is None else 1):
                    break
            else:
                chunk.complete = True
        except errors as exc:
            walk.error = exc
            walk.stopped = f"API error: {exc}"
            _keep_prefix(walk, chunk, trusted=bool(walk.ordered))
            return walk
        if len(chunk.pages) >= 2:
            walk.ordered = chunk.ordered if walk.ordered is not False else False

        width = hi - lo if hi is not None else max(now - lo, MIN_SPAN)
        if chunk.complete:
            force_bounded = False
            walk.rows.extend(chunk.rows)
            walk.chunks += 1
            if hi is None:
                walk.reached_now = True
                # An idle stretch says little about the next burst: never narrow on it.
                if width > timedelta(0) and chunk.rows:
                    previous = walk.span
                    aim(len(chunk.rows), width)
                    walk.span = max(previous, walk.span)
                return walk
            walk.listed_through = hi
            aim(len(chunk.rows), width)
            lo = hi
            continue

        prefix = _keep_prefix(walk, chunk, trusted=bool(walk.ordered))
        if prefix is not None:
            through, kept = prefix
            aim(kept, through - lo)
            lo = through
            continue
        if width <= MIN_SPAN or chunk.all_at_lo:
            if remaining_pages() > 0:
                # Every row so far shares ``lo``: list that millisecond alone, with the
                # rest of the budget, before going on.
                walk.span, force_bounded = MIN_SPAN, True
                continue
            walk.stopped = f"budget spent inside the single millisecond {lo.isoformat()}"
            if 2 * len(chunk.pages) >= tick_pages():
                walk.tie_at = lo  # it had most of a tick and still did not end
            return walk
        # Out of order: narrow from the rows seen, and at least halve.
        walk.span = min(walk.span, _narrower(chunk, width, target_rows()))
        crowded_ms.update(chunk.crowded(page_rows))
        force_bounded = force_bounded or hi is None


def _keep_prefix(walk: Walk, chunk: _Chunk, *, trusted: bool) -> tuple[datetime, int] | None:
    """Keep the ordered prefix of a cut chunk in ``walk``; count dropped pages.

    One page proves no order by itself; it counts only once ``trusted`` (earlier
    listings of this tick came back in order).
    """
    prefix = chunk.usable_prefix() if len(chunk.pages) >= 2 or trusted else None
    if prefix is None:
        walk.abandoned_pages += len(chunk.pages)
        return None
    through, kept, dropped = prefix
    walk.rows.extend(kept)
    walk.abandoned_pages += dropped
    walk.listed_through = through
    walk.chunks += 1
    return through, len(kept)


def _narrower(chunk: _Chunk, width: timedelta, target_rows: float) -> timedelta:
    """The width of the next try at a chunk that was cut short out of order.

    If the listing is in no particular order, the rows seen are a sample of the chunk:
    aim at the width holding half the target among them (they are only part of the
    chunk), and at least halve.
    """
    keys = sorted(chunk.key(r) for r in chunk.rows)
    k = max(1, math.floor(target_rows / 2))
    if len(keys) > k:
        by_sample = keys[k - 1] - chunk.lo + MIN_SPAN
    else:
        by_sample = width * (target_rows / max(len(keys), 1) / 2)
    return _span_ms(min(_ms(by_sample), _ms(width) / 2))
