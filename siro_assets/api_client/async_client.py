"""The asyncio Siro API client (httpx + tenacity); the shared logic is in :mod:`.core`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar, Unpack

import httpx
from tenacity import AsyncRetrying

from . import endpoints
from .core import DEFAULT_BASE_URL, RECORDINGS_PATH, ClientCore, Page, RawPage, TransientFailure
from .endpoints import EnrichmentFlags
from .errors import SiroNotFoundError
from .models import CallerIdentity, Recording, SummarySection
from .pacing import RequestPacer
from .paging import PageWalk
from .query import RecordingsQuery
from .retry import RetryPolicy
from .shapes import ShapeCheck, list_page_cursor, list_page_shape

__all__ = ["AsyncSiroClient", "fetch_each"]

T = TypeVar("T")


# Bodies at least this big are parsed in a worker thread, not on the event loop.
PARSE_OFF_LOOP_BYTES = 64 * 1024


class AsyncSiroClient(ClientCore):
    """Asyncio Siro API client with the same behaviour as ``SiroClient``.

    Use ``async with`` or ``await aclose()``. One ``RequestPacer`` may be shared with
    sync clients and with async clients on other event loops.
    """

    def __init__(
        self,
        token: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        pacer: RequestPacer | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
    ) -> None:
        super().__init__(token, base_url, pacer, retry, timeout)
        self._http = httpx.AsyncClient(transport=transport, **self._client_kwargs())

    async def __aenter__(self) -> AsyncSiroClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the underlying HTTP connection pool."""
        await self._http.aclose()

    async def _attempt(self, path: str, params: dict[str, str], shape: ShapeCheck) -> tuple[bytes, Any]:
        await self.pacer.acquire_async()
        self._bump(requests=1)
        try:
            response = await self._http.get(path, params=params)
        except httpx.RequestError as exc:  # transport failures and undecodable bodies
            raise self._transport_failure("GET", path, params, exc) from exc
        if len(response.content) >= PARSE_OFF_LOOP_BYTES:
            # A big page takes tens of milliseconds to parse; on the event loop that
            # would stall every other request in flight.
            return await asyncio.to_thread(self._handle_response, "GET", path, params, response, shape)
        return self._handle_response("GET", path, params, response, shape)

    async def _get(self, path: str, params: dict[str, str], shape: ShapeCheck) -> tuple[bytes, Any]:
        retrying = AsyncRetrying(**self._retrying_kwargs("GET", path, params))
        try:
            return await retrying(self._attempt, path, params, shape)
        except TransientFailure as exc:
            raise self._exhausted("GET", path, params, exc) from exc.cause

    async def _body_attempt(
        self, params: dict[str, str], accept: Callable[[bytes], Awaitable[Any]], scanned: asyncio.Future
    ) -> RawPage:
        await self.pacer.acquire_async()
        granted = time.monotonic()
        self._bump(requests=1)
        try:
            async with self._http.stream("GET", RECORDINGS_PATH, params=params) as response:
                if response.is_success:
                    # The body is read into our own object: an httpx Response sits in a
                    # reference cycle, so a body it kept (`.content`) would live until the
                    # cyclic GC runs, which a loop that allocates little rarely triggers.
                    content = b"".join([chunk async for chunk in response.aiter_bytes()])
                else:
                    content = await response.aread()
        except httpx.RequestError as exc:
            raise self._transport_failure("GET", RECORDINGS_PATH, params, exc) from exc
        args = ("GET", RECORDINGS_PATH, params, response, list_page_shape, list_page_cursor, content)
        if len(content) >= PARSE_OFF_LOOP_BYTES:
            # The cursor scan is cheap, but a body it cannot read (cursor not last, say)
            # takes the full parse, which must not stall the other requests in flight.
            body, cursor = await asyncio.to_thread(self._handle_response, *args)
        else:
            body, cursor = self._handle_response(*args)
        del args, response, content
        latency = time.monotonic() - granted
        if not scanned.done():
            scanned.set_result(cursor)  # lets the next page be asked for while this one is parsed
        try:
            accepted = await accept(body)
        except ValueError as exc:
            # The caller's own parse refused the body: like any malformed body, ask again.
            raise TransientFailure(
                "malformed", f"body refused ({len(body)} bytes): {self._auth.scrub(str(exc))}"
            ) from exc
        return RawPage(body=body, cursor=cursor, accepted=accepted, latency_seconds=latency)

    async def _get_body(
        self, params: dict[str, str], accept: Callable[[bytes], Awaitable[Any]], scanned: asyncio.Future
    ) -> RawPage:
        retrying = AsyncRetrying(**self._retrying_kwargs("GET", RECORDINGS_PATH, params))
        try:
            return await retrying(self._body_attempt, params, accept, scanned)
        except TransientFailure as exc:
            raise self._exhausted("GET", RECORDINGS_PATH, params, exc) from exc.cause

    async def _call(self, call: endpoints.Call[T]) -> T:
        _, parsed = await self._get(call.path, call.params, call.shape)
        return call.result(parsed)

    async def caller_identity(self) -> CallerIdentity:
        """Which organization and token the client authenticates as (cheap token check)."""
        return await self._call(endpoints.caller_identity())

    async def aiter_recording_pages(self, query: RecordingsQuery) -> AsyncIterator[Page]:
        """Yield every page for ``query``, following ``cursor`` until it is null or missing."""
        walk = PageWalk(query.to_params(), self._count_page)
        while not walk.done:
            # Never bound to a local, as in `SiroClient.iter_recording_pages`.
            yield walk.page(*await self._get(RECORDINGS_PATH, walk.params(), list_page_shape))

    async def aiter_recording_bodies(
        self,
        query: RecordingsQuery,
        accept: Callable[[bytes], Awaitable[Any]],
        *,
        read_ahead: Callable[[], bool] = lambda: False,
    ) -> AsyncIterator[RawPage]:
        """Yield every page for ``query`` unparsed, once ``accept`` has taken its body.

        For callers that parse pages their own way (the warehouse stage, in DuckDB):
        the client reads only the cursor (`shapes.list_page_cursor`). ``accept``
        raising ``ValueError`` marks the body malformed: the same page is fetched
        again, and after the retry policy's attempts the walk fails with
        ``SiroMalformedResponseError``; ``accept`` must leave nothing behind when it
        raises. While ``read_ahead()`` is true, the next page is asked for as soon as
        this one's cursor is known, so the caller's parse overlaps the next request;
        a read-ahead page is dropped (one request spent) if the caller stops early or
        this page had to be fetched again.
        """
        walk = PageWalk(query.to_params(), self._count_page)

        def ask(cursor: str | None) -> tuple[dict[str, str], asyncio.Task, asyncio.Future]:
            params = walk.params(cursor)
            scanned = asyncio.get_running_loop().create_future()
            return params, asyncio.ensure_future(self._get_body(params, accept, scanned)), scanned

        current = ask(None)
        ahead: tuple[dict[str, str], asyncio.Task, asyncio.Future] | None = None
        try:
            while True:
                params, task, scanned = current
                if read_ahead():
                    await asyncio.wait({task, scanned}, return_when=asyncio.FIRST_COMPLETED)
                    if not task.done() and scanned.result() is not None and not walk.followed(scanned.result()):
                        ahead = ask(scanned.result())
                page = await task
                cursor = walk.follow(page.cursor, params)
                if ahead is not None and ahead[0].get("cursor") != cursor:
                    # This page was fetched again and came back with another cursor.
                    await _abandon(ahead[1])
                    ahead = None
                # Hand the page over without keeping it (a body is MBs): neither this
                # frame nor the finished task may hold it while the caller works.
                handover = [page]
                del page
                current = (params, None, scanned)
                task = None
                yield handover.pop()
                if cursor is None:
                    return
                current, ahead = (ahead or ask(cursor)), None
        finally:
            await _abandon(*(t for t in (current[1], ahead[1] if ahead else None) if t is not None))

    async def aiter_recordings(self, query: RecordingsQuery) -> AsyncIterator[Recording]:
        """Yield every recording for ``query`` as a typed ``Recording``."""
        async for page in self.aiter_recording_pages(query):
            for record in page.records:
                yield Recording.model_validate(record)

    async def get_recording(self, recording_id: str, **flags: Unpack[EnrichmentFlags]) -> Recording:
        """Fetch one recording (``show_*`` flags: `EnrichmentFlags`); raises
        ``SiroNotFoundError`` for an unknown id."""
        return await self._call(endpoints.recording(recording_id, **flags))

    async def get_recording_json(self, recording_id: str, **flags: Unpack[EnrichmentFlags]) -> dict[str, Any]:
        """One recording as the API's JSON object (unknown fields kept), for staging as
        a list page would be; raises ``SiroNotFoundError`` for an unknown id."""
        return await self._call(endpoints.recording_json(recording_id, **flags))

    async def get_summaries(self, recording_id: str) -> list[SummarySection]:
        """Fetch a recording's AI summary sections (``[]`` if it has none)."""
        return await self._call(endpoints.summaries(recording_id))


# Single-recording requests in flight at once: enough to hide the round trip of a few
# dozen ids (the webhook path's fetch), few enough that the pacer, not a burst, sets the rate.
FETCH_EACH_CONCURRENCY = 8


async def fetch_each(
    ids: Sequence[str], fetch: Callable[[str], Awaitable[T]], *, concurrency: int = FETCH_EACH_CONCURRENCY
) -> list[T | None]:
    """``fetch(id)`` for every id, at most ``concurrency`` at once, in the order of ``ids``;
    None where the API does not know the id (``SiroNotFoundError``).

    Any other error cancels the requests still in flight and is raised.
    """
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(recording_id: str) -> T | None:
        async with gate:
            try:
                return await fetch(recording_id)
            except SiroNotFoundError:
                return None

    tasks = [asyncio.create_task(one(recording_id)) for recording_id in ids]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        await _abandon(*tasks)
        raise


async def _abandon(*tasks: asyncio.Task) -> None:
    """Cancel requests nobody will read, and collect their outcome (so none is left
    pending, or failed with nobody to see it)."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
