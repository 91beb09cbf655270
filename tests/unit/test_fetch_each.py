"""`fetch_each`: the webhook path's single-recording requests, a few at once."""

from __future__ import annotations

import asyncio

import pytest

from siro_assets.api_client.async_client import fetch_each
from siro_assets.api_client.errors import SiroNotFoundError, SiroUnavailableError


def test_results_keep_the_order_of_the_ids_and_a_404_is_none():
    async def fetch(recording_id: str) -> str:
        # The first ids answer last: order must come from the ids, not from completion.
        await asyncio.sleep(0.01 * (5 - int(recording_id[-1])))
        if recording_id == "rec_3":
            raise SiroNotFoundError("no such recording")
        return recording_id.upper()

    ids = [f"rec_{i}" for i in range(5)]
    assert asyncio.run(fetch_each(ids, fetch)) == ["REC_0", "REC_1", "REC_2", None, "REC_4"]


def test_no_more_than_the_limit_are_in_flight():
    in_flight, most = 0, 0

    async def fetch(recording_id: str) -> str:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.005)
        in_flight -= 1
        return recording_id

    ids = [f"rec_{i}" for i in range(30)]
    assert asyncio.run(fetch_each(ids, fetch, concurrency=4)) == ids
    assert most == 4


def test_another_error_is_raised_and_cancels_the_requests_in_flight():
    cancelled = []

    async def fetch(recording_id: str) -> str:
        if recording_id == "rec_0":
            raise SiroUnavailableError("503 after every retry")
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(recording_id)
            raise
        return recording_id

    with pytest.raises(SiroUnavailableError):
        asyncio.run(fetch_each([f"rec_{i}" for i in range(4)], fetch, concurrency=4))
    assert sorted(cancelled) == ["rec_1", "rec_2", "rec_3"]
