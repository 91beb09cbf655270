"""Which `createdAt` windows to list, and when to split one that turns out to be long.

Pure bookkeeping, no I/O. A backfill starts with one window per run of consecutive
days. While a window is walked, its pages show how far it has come (the API lists a
`createdAt` window in ascending `createdAt` order) and how dense it is, so an idle
worker can take the far half of the longest remaining window: the walker keeps its
cursor and stops at the first page that reaches the split point, the new window starts
exactly there. Every recording stays covered by at least one window, and a recording
two windows both return (the crossing page's tail) is deduplicated by id in the stage.

Splits cost requests (each window ends in a part-filled page), so they are budgeted:
a small share of the pages the listing is estimated to need.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

DAY_MS = 86_400_000
# A split pays off only if the window still has more pages left than the round trips
# it costs (the walker's crossing page and the new window's last, part-filled page).
MIN_PAGES_LEFT_TO_SPLIT = 3
# Share of the estimated pages that may be spent on extra windows: keeps a backfill
# within 1.05 x (recordings / served page size) list requests.
SPLIT_BUDGET_SHARE = 0.04
# Initial windows span at most this many days: a first page should not wait on a
# server scanning months, and a long backfill starts on several cursors at once. A
# week of recordings fills many pages, so the part-filled page per window is cheap.
MAX_INITIAL_DAYS = 7


EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MS = timedelta(milliseconds=1)


def to_ms(moment: datetime) -> int:
    """Epoch milliseconds of an aware datetime, truncated (the API's precision)."""
    return (moment - EPOCH) // MS


def from_ms(ms: int) -> datetime:
    """The aware UTC datetime at epoch milliseconds `ms`."""
    return EPOCH + ms * MS


def day_runs(days: Sequence[date], max_days: int = MAX_INITIAL_DAYS) -> list[tuple[int, int]]:
    """`[start, end)` epoch-ms ranges covering `days`: runs of consecutive days, at most
    `max_days` long."""
    runs: list[tuple[int, int]] = []
    for day in sorted(set(days)):
        start = to_ms(datetime(day.year, day.month, day.day, tzinfo=timezone.utc))
        if runs and runs[-1][1] == start and runs[-1][1] - runs[-1][0] < max_days * DAY_MS:
            runs[-1] = (runs[-1][0], start + DAY_MS)
        else:
            runs.append((start, start + DAY_MS))
    return runs


@dataclass
class WindowWalk:
    """One `[start, end)` window being listed, and what its pages have shown so far.

    `stop_at` is set when the far part of the window was handed to another walk: the
    walker stops at the first page whose last record reaches it.
    """

    start: int
    end: int
    stop_at: int | None = None
    records: int = 0
    pages: int = 0
    last_created: int | None = None
    ascending: bool = True
    done: bool = False

    @property
    def effective_end(self) -> int:
        """Where this walk's responsibility ends."""
        return self.end if self.stop_at is None else self.stop_at

    def observe(self, created: Sequence[int]) -> None:
        """Record one page's `createdAt` values (epoch ms, in the order received)."""
        self.pages += 1
        self.records += len(created)
        previous = self.last_created
        for value in created:
            if previous is not None and value < previous:
                # Not in createdAt order after all: never stop early, walk to the end.
                self.ascending = False
            previous = value
        if created:
            self.last_created = max(created) if not self.ascending else created[-1]

    def should_stop(self) -> bool:
        """True once the part left belongs to a walk split off this one."""
        return (
            self.stop_at is not None
            and self.ascending
            and self.last_created is not None
            and self.last_created >= self.stop_at
        )

    def records_left(self) -> float:
        """Estimated recordings still to list, from the density seen so far."""
        if self.done or not self.ascending or self.last_created is None or self.records == 0:
            return 0.0
        covered = self.last_created - self.start + 1
        left = self.effective_end - self.last_created - 1
        return self.records / covered * left if left > 0 else 0.0


@dataclass
class WindowPlanner:
    """Hands out windows: the initial ones, then the far halves of long ones.

    `served_page_size` is what the server actually returns on a full page (learned,
    never assumed from what was asked for).
    """

    days: Sequence[date]
    pending: list[WindowWalk] = field(default_factory=list)
    active: list[WindowWalk] = field(default_factory=list)
    served_page_size: int = 0
    splits: int = 0

    def __post_init__(self) -> None:
        self.pending = [WindowWalk(start, end) for start, end in day_runs(self.days)]

    def note_full_page(self, size: int) -> None:
        """A page that had a next cursor held `size` records: the server's page size."""
        self.served_page_size = max(self.served_page_size, size)

    def estimated_pages(self) -> float:
        """Pages the whole listing needs, from what was listed plus what each walk has left."""
        if not self.served_page_size:
            return 0.0
        listed = sum(w.records for w in self.active)
        left = sum(w.records_left() for w in self.active)
        return (listed + left) / self.served_page_size

    def next_window(self) -> WindowWalk | None:
        """A window for an idle worker: a pending one, else the far half of the longest."""
        if self.pending:
            walk = self.pending.pop(0)
            self.active.append(walk)
            return walk
        return self._split_longest()

    def finished(self, walk: WindowWalk) -> None:
        """`walk` has listed everything it is responsible for."""
        walk.done = True
        self.active.remove(walk)

    def exhausted(self) -> bool:
        """Nothing pending and nothing being walked: the listing is complete."""
        return not self.pending and not self.active

    def _split_longest(self) -> WindowWalk | None:
        page = self.served_page_size
        if not page:
            return None
        if self.splits + 1 > SPLIT_BUDGET_SHARE * self.estimated_pages():
            return None
        candidates = [w for w in self.active if w.records_left() >= MIN_PAGES_LEFT_TO_SPLIT * page]
        if not candidates:
            return None
        victim = max(candidates, key=WindowWalk.records_left)
        assert victim.last_created is not None
        middle = victim.last_created + 1 + (victim.effective_end - victim.last_created - 1) // 2
        new = WindowWalk(middle, victim.effective_end)
        victim.stop_at = middle
        self.splits += 1
        self.active.append(new)
        return new
