"""The synchronous Siro API client (httpx + tenacity); the shared logic is in :mod:`.core`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar, Unpack

import httpx
from tenacity import Retrying

from . import endpoints
from .core import DEFAULT_BASE_URL, RECORDINGS_PATH, ClientCore, Page, TransientFailure
from .endpoints import EnrichmentFlags
from .models import CallerIdentity, Recording, SummarySection
from .pacing import RequestPacer
from .paging import PageWalk
from .query import RecordingsQuery
from .retry import RetryPolicy
from .shapes import ShapeCheck, list_page_shape

__all__ = ["SiroClient"]

T = TypeVar("T")


class SiroClient(ClientCore):
    """Synchronous Siro API client. Use as a context manager or call ``close()``.

    ``pacer=None`` uses the process-wide default pacer (950 requests/min, burst 10)
    so that every client sharing the token shares one budget.
    """

    def __init__(
        self,
        token: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        transport: httpx.BaseTransport | None = None,
        pacer: RequestPacer | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
    ) -> None:
        super().__init__(token, base_url, pacer, retry, timeout)
        self._http = httpx.Client(transport=transport, **self._client_kwargs())

    def __enter__(self) -> SiroClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the underlying HTTP connection pool."""
        self._http.close()

    def _attempt(self, path: str, params: dict[str, str], shape: ShapeCheck) -> tuple[bytes, Any]:
        self.pacer.acquire()
        self._bump(requests=1)
        try:
            response = self._http.get(path, params=params)
        except httpx.RequestError as exc:  # transport failures and undecodable bodies
            raise self._transport_failure("GET", path, params, exc) from exc
        return self._handle_response("GET", path, params, response, shape)

    def _get(self, path: str, params: dict[str, str], shape: ShapeCheck) -> tuple[bytes, Any]:
        retrying = Retrying(**self._retrying_kwargs("GET", path, params))
        try:
            return retrying(self._attempt, path, params, shape)
        except TransientFailure as exc:
            raise self._exhausted("GET", path, params, exc) from exc.cause

    def _call(self, call: endpoints.Call[T]) -> T:
        _, parsed = self._get(call.path, call.params, call.shape)
        return call.result(parsed)

    def caller_identity(self) -> CallerIdentity:
        """Which organization and token the client authenticates as (cheap token check)."""
        return self._call(endpoints.caller_identity())

    def iter_recording_pages(self, query: RecordingsQuery) -> Iterator[Page]:
        """Yield every page for ``query``, following ``cursor`` until it is null or missing.

        Page sizes are whatever the server returns; nothing is assumed about order.
        """
        walk = PageWalk(query.to_params(), self._count_page)
        while not walk.done:
            # Never bound to a local: a parsed page of 1,000 records is tens of MB, and
            # while the caller holds on (e.g. waits for room in a queue) a name in this
            # frame would keep a second reference alive.
            yield walk.page(*self._get(RECORDINGS_PATH, walk.params(), list_page_shape))

    def iter_recordings(self, query: RecordingsQuery) -> Iterator[Recording]:
        """Yield every recording for ``query`` as a typed ``Recording``."""
        for page in self.iter_recording_pages(query):
            for record in page.records:
                yield Recording.model_validate(record)

    def get_recording(self, recording_id: str, **flags: Unpack[EnrichmentFlags]) -> Recording:
        """Fetch one recording (``show_*`` flags: `EnrichmentFlags`); raises
        ``SiroNotFoundError`` for an unknown id."""
        return self._call(endpoints.recording(recording_id, **flags))

    def get_summaries(self, recording_id: str) -> list[SummarySection]:
        """Fetch a recording's AI summary sections (``[]`` if it has none)."""
        return self._call(endpoints.summaries(recording_id))
