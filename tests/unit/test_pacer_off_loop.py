"""A pacer whose store blocks (a file lock, PostgreSQL) reserves off the event loop."""

from __future__ import annotations

import asyncio
import threading

from siro_assets.api_client.pacing import RequestPacer, SharedRequestPacer
from siro_assets.api_client.pg_budget import PostgresRequestPacer


class _BlockingStore(RequestPacer):
    """Its reserve waits for the event loop to do something: only possible off the loop."""

    reserve_blocks = True

    def __init__(self) -> None:
        super().__init__(600)
        self.loop_ran = threading.Event()

    def reserve(self) -> float:
        assert self.loop_ran.wait(5), "reserve ran on the event loop and blocked it"
        return 0.0


def test_a_blocking_reserve_leaves_the_event_loop_free():
    async def main() -> float:
        pacer = _BlockingStore()
        acquiring = asyncio.create_task(pacer.acquire_async())
        await asyncio.sleep(0)  # acquire_async starts and reaches reserve
        pacer.loop_ran.set()  # the loop is still running
        return await acquiring

    assert asyncio.run(main()) == 0.0


def test_the_shared_stores_are_marked_blocking_and_the_in_process_one_is_not():
    assert SharedRequestPacer.reserve_blocks and PostgresRequestPacer.reserve_blocks
    assert not RequestPacer.reserve_blocks
