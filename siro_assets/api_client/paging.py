"""The cursor walk over ``GET /v1/core/recordings`` that both clients drive.

The walk does no I/O: a client asks it for the next request's params, sends the request
its own way (sync, async, streamed), and hands the answer back. The walk follows the
cursor, refuses one it already followed and counts the pages, so the sync and async
loops cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .core import RECORDINGS_PATH, Page
from .errors import SiroMalformedResponseError, describe_request

__all__ = ["PageWalk"]


class PageWalk:
    """One query's walk: ``params()`` for the next page, ``follow()`` once it is in.

    ``count_page`` is called once per page delivered (the client's stats).
    """

    def __init__(self, query_params: Mapping[str, str], count_page: Callable[[], None] = lambda: None) -> None:
        self._base = dict(query_params)
        self._count_page = count_page
        self._seen: set[str] = set()
        self._cursor: str | None = None
        self._asked: dict[str, str] = self._base
        self.done = False

    def params(self, cursor: str | None = None) -> dict[str, str]:
        """The params of a page request: the query's, plus ``cursor`` (default: the
        cursor the last page returned)."""
        cursor = self._cursor if cursor is None else cursor
        self._asked = dict(self._base) if cursor is None else {**self._base, "cursor": cursor}
        return self._asked

    def followed(self, cursor: str | None) -> bool:
        """Whether ``cursor`` was already handed back by an earlier page."""
        return cursor in self._seen

    def follow(self, cursor: str | None, params: Mapping[str, str] | None = None) -> str | None:
        """Take the cursor of the page fetched with ``params`` (default: the last
        ``params()``): the next page's cursor, or None once the walk is done."""
        params = self._asked if params is None else params
        cursor = cursor or None
        if cursor is not None:
            if cursor in self._seen:
                # A server that hands back an old cursor would loop us forever.
                raise SiroMalformedResponseError(
                    f"{describe_request('GET', RECORDINGS_PATH, params)} returned a cursor "
                    "that was already followed; stopping to avoid an endless loop",
                    method="GET", path=RECORDINGS_PATH, params=params,
                )
            self._seen.add(cursor)
        self._cursor = cursor
        self.done = cursor is None
        self._count_page()
        return cursor

    def page(self, body: bytes, parsed: dict[str, Any]) -> Page:
        """The parsed page answering the last ``params()``, its cursor followed."""
        return Page(records=parsed["data"], body=body, cursor=self.follow(parsed.get("cursor")))
