"""The cursor walk both API clients drive, without any I/O."""

import gc
import sys
import types

import pytest

from siro_assets.api_client import SiroMalformedResponseError
from siro_assets.api_client.paging import PageWalk


def test_the_walk_follows_each_cursor_until_there_is_none_and_counts_pages():
    counted = []
    walk = PageWalk({"limit": "2"}, lambda: counted.append(1))
    assert walk.params() == {"limit": "2"}
    page = walk.page(b"one", {"data": [{"id": "a"}], "cursor": "c1"})
    assert (page.records, page.body, page.cursor, walk.done) == ([{"id": "a"}], b"one", "c1", False)
    assert walk.params() == {"limit": "2", "cursor": "c1"}
    assert walk.page(b"two", {"data": [], "cursor": ""}).cursor is None   # an empty cursor ends the walk
    assert walk.done and len(counted) == 2


def test_a_cursor_handed_back_twice_stops_the_walk_naming_the_request():
    walk = PageWalk({"limit": "2"})
    walk.params()
    walk.follow("c1")
    assert walk.followed("c1") and not walk.followed("c2")
    walk.params()
    with pytest.raises(SiroMalformedResponseError, match="already followed") as raised:
        walk.follow("c1")
    assert raised.value.params == {"limit": "2", "cursor": "c1"}


def test_params_for_a_read_ahead_cursor_leave_the_walk_where_it_is():
    walk = PageWalk({})
    assert walk.params("c9") == {"cursor": "c9"}
    walk.follow("c9")
    assert walk.params() == {"cursor": "c9"}


def test_the_sync_client_keeps_no_reference_to_a_page_it_handed_over():
    import httpx

    from siro_assets.api_client import RecordingsQuery, SiroClient
    from siro_assets.api_client.pacing import RequestPacer

    pages = iter([b'{"data": [{"id": "a"}], "cursor": "c1"}', b'{"data": [], "cursor": null}'])
    client = SiroClient("t", "https://siro.test", pacer=RequestPacer(1e9, burst=1000),
                        transport=httpx.MockTransport(lambda request: httpx.Response(200, content=next(pages))))
    walk = client.iter_recording_pages(RecordingsQuery())
    first = next(walk)
    gc.collect()
    # Only this test holds the page, and only the page its records: not the generator's frame.
    here = sys._getframe()
    assert [r for r in gc.get_referrers(first) if r is not here and not isinstance(r, types.CellType)] == []
    assert [r for r in gc.get_referrers(first.records) if r is not first and r is not vars(first)] == []
    assert [p.cursor for p in walk] == [None]
    client.close()
