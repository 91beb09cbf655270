"""List an `updatedAt` backlog in chunks, within one tick's time and page budget.

Dagster cancels a sensor evaluation after 60 s and keeps the old cursor, so a tick
that tries to list a large backlog in one go never finishes and the backlog only grows.
The walk cuts ``[start, now]`` into consecutive ``updatedAt`` chunks ``[lo, hi)``
(``updatedAt:gte`` / ``updatedAt:lt``, so a millisecond shared by many recordings never
straddles two chunks) and lists each chunk completely, or not at all: the API
documents no order, so a chunk cut short says nothing about what it has not returned
yet. Only complete chunks count; ``listed_through`` is the end of the last one, the
point the watermark may move to. The chunk reaching ``now`` has no upper bound, so
an idle tick is still one request.

Chunk widths adapt to the backlog's density: after each chunk the next width aims at
``target_pages`` pages, and a chunk that outgrows its share of the remaining budget
is abandoned and retried narrower. The width reached is kept in the cursor for the next
tick. No Dagster here; the page source and the clock are injected.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

__all__ = ["DEFAULT_SPAN", "MAX_SPAN", "MIN_SPAN", "TickBudget", "Walk", "walk_backlog"]

Row = tuple[str, datetime, datetime]
"""(recording id, createdAt, updatedAt)."""

PageSource = Callable[[datetime, datetime | None], Iterable[tuple[list[Row], bool]]]
"""``list_pages(lo, hi)`` yields ``(rows, more_pages_follow)`` for ``lo <= updatedAt < hi``."""

MIN_SPAN = timedelta(milliseconds=1)  # the API's timestamp precision
MAX_SPAN = timedelta(days=7)
DEFAULT_SPAN = timedelta(hours=1)
# How much wider than the last chunk the next one may be: quick to widen over sparse
# history, without one huge leap into a dense stretch.
MAX_GROWTH = 16


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
        """Pages one chunk aims at: a fraction of the budget, so a tick lists several."""
        return max(2, self.pages // 8)


@dataclass
class Walk:
    """What one tick's walk listed.

    ``rows`` come from complete chunks only. ``listed_through`` is the end of the last
    complete bounded chunk (None if there was none); ``reached_now`` says the unbounded
    last chunk was listed too, i.e. the backlog is drained. ``stopped`` is why the walk
    ended early (None when it reached now), ``error`` the API error that ended it.
    ``tie_at`` is set when a single millisecond (``[tie_at, tie_at + 1 ms)``) held more
    than the whole budget could list: the sensor then walks that millisecond by
    ``createdAt`` instead (see ``sensors.py``).
    """

    rows: list[Row] = field(default_factory=list)
    listed_through: datetime | None = None
    reached_now: bool = False
    span: timedelta = DEFAULT_SPAN
    pages: int = 0
    chunks: int = 0
    abandoned_pages: int = 0
    stopped: str | None = None
    error: Exception | None = None
    tie_at: datetime | None = None


def _clamp(span: timedelta) -> timedelta:
    return max(MIN_SPAN, min(MAX_SPAN, span))


def _scaled(width: timedelta, factor: float) -> timedelta:
    # Whole milliseconds, since that is all the API can filter on.
    ms = max(1, math.floor(width / MIN_SPAN * factor))
    return _clamp(timedelta(milliseconds=ms))


def walk_backlog(
    list_pages: PageSource,
    start: datetime,
    now: datetime,
    span: timedelta | None,
    budget: TickBudget,
    clock: Callable[[], float],
    *,
    errors: tuple[type[Exception], ...] = (),
) -> Walk:
    """List ``updatedAt >= start`` chunk by chunk until ``now`` or the budget is spent.

    ``clock`` is a monotonic seconds counter (``time.monotonic`` in the sensor, a fake
    one in tests). An exception of a type in ``errors`` ends the walk with what the
    complete chunks listed; the chunk it interrupted is dropped and listed again by
    the next tick.
    """
    begun = clock()
    walk = Walk(span=_clamp(span or DEFAULT_SPAN))
    lo = start
    # After an unbounded chunk was abandoned, the next try must be bounded (narrower),
    # even though it ends close to now; the watermark then moves only to its end.
    force_bounded = False

    def remaining_pages() -> int:
        elapsed = clock() - begun
        if elapsed >= budget.seconds:
            return 0
        left = budget.pages - walk.pages
        if walk.pages and elapsed > 0:
            left = min(left, math.floor((budget.seconds - elapsed) / (elapsed / walk.pages)))
        return max(left, 0)

    while True:
        available = remaining_pages()
        if available <= 0:
            walk.stopped = "budget spent"
            return walk
        hi: datetime | None = lo + walk.span
        if hi >= now and not force_bounded:
            hi = None  # the chunk reaching now is unbounded: nothing newer can be missed
        # A chunk may use half of what is left, so that abandoning it leaves room to
        # retry narrower in the same tick; a single millisecond cannot be narrowed.
        cap = available if walk.span == MIN_SPAN else max(1, available // 2)
        rows: list[Row] = []
        chunk_pages = 0
        complete = False
        try:
            for page_rows, more in list_pages(lo, hi):
                walk.pages += 1
                chunk_pages += 1
                rows.extend(page_rows)
                if not more:
                    complete = True
                    break
                if chunk_pages >= cap or remaining_pages() <= 0:
                    break
            else:
                complete = True
        except errors as exc:
            walk.error = exc
            walk.stopped = f"API error: {exc}"
            walk.abandoned_pages += chunk_pages
            return walk

        width = hi - lo if hi is not None else max(now - lo, MIN_SPAN)
        if not complete:
            walk.abandoned_pages += chunk_pages
            if width <= MIN_SPAN:
                walk.stopped = f"budget spent inside the single millisecond {lo.isoformat()}"
                if chunk_pages >= cap:  # it had the whole rest of the budget and still did not end
                    walk.tie_at = lo
                return walk
            # The chunk holds more than `chunk_pages` pages: aim the next try at half
            # the target from that lower bound on its density, and at least halve it.
            walk.span = min(walk.span, _scaled(width, min(0.5, budget.target_pages / chunk_pages / 2)))
            force_bounded = force_bounded or hi is None
            continue  # the top of the loop stops if the budget is spent

        force_bounded = False
        walk.rows.extend(rows)
        walk.chunks += 1
        growth = min(MAX_GROWTH, budget.target_pages / max(chunk_pages, 1))
        if hi is None:
            walk.reached_now = True
            # An idle stretch says little about the next burst: never narrow on it.
            walk.span = max(walk.span, _scaled(width, growth)) if width > timedelta(0) else walk.span
            return walk
        walk.listed_through = hi
        walk.span = _scaled(width, growth)
        lo = hi
