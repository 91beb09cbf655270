"""The synchronous Siro API client (httpx + tenacity); the shared logic is in :mod:`.core`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
from tenacity import Retrying

from .core import (
    CALLER_IDENTITY_PATH,
    DEFAULT_BASE_URL,
    RECORDINGS_PATH,
    ClientCore,
    Page,
    TransientFailure,
    recording_path,
)
from .models import CallerIdentity, Recording, SummarySection
from .pacing import RequestPacer
from .paging import PageWalk
from .query import RecordingsQuery, enrichment_params
from .retry import RetryPolicy
from .shapes import (
    ShapeCheck,
    list_of_objects_shape,
    list_page_shape,
    object_shape,
    recording_shape,
    unwrap_list,
    unwrap_recording,
)

__all__ = ["SiroClient"]


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

    def caller_identity(self) -> CallerIdentity:
        """Which organization and token the client authenticates as (cheap token check)."""
        _, parsed = self._get(CALLER_IDENTITY_PATH, {}, object_shape)
        return CallerIdentity.model_validate(parsed)

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

    def get_recording(
        self,
        recording_id: str,
        *,
        show_crm_links: bool = False,
        show_summary: bool = False,
        show_entity_extractions: bool = False,
        show_evaluation_score: bool = False,
        show_followups: bool = False,
    ) -> Recording:
        """Fetch one recording; raises ``SiroNotFoundError`` for an unknown id."""
        params = enrichment_params(
            show_crm_links=show_crm_links,
            show_summary=show_summary,
            show_entity_extractions=show_entity_extractions,
            show_evaluation_score=show_evaluation_score,
            show_followups=show_followups,
        )
        _, parsed = self._get(recording_path(recording_id), params, recording_shape)
        return Recording.model_validate(unwrap_recording(parsed))

    def get_summaries(self, recording_id: str) -> list[SummarySection]:
        """Fetch a recording's AI summary sections (``[]`` if it has none)."""
        _, parsed = self._get(recording_path(recording_id, "/summaries"), {}, list_of_objects_shape)
        return [SummarySection.model_validate(item) for item in unwrap_list(parsed)]
