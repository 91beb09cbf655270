"""Due fields are read back a page of CRM records at a time (issue 16, item 8): memory is
bounded by the page, every field still goes out once, a record's fields stay together,
and a sink that stopped the delivery is not called again on later pages."""

from __future__ import annotations

from datetime import date

import siro_assets.crm.delivery as delivery_module
from siro_assets.crm import Routing
from siro_assets.crm.ledger import QUEUE_TABLE
from tests.crm_support import Bed, crm_block, extraction, recording, settings

D1 = date(2026, 3, 1)


def _fields(n: int, connection: str = "ic_http") -> list[dict]:
    return [recording(f"r{n}", D1, crm=crm_block(connection, opportunity=f"{n}"), entityExtractions=[
        extraction(f"a{n}", ("Deal", "note")), extraction(f"b{n}", ("Deal", "description"), name="y")])
        for n in range(n)]


def _spy_pages(monkeypatch) -> list[list]:
    pages: list[list] = []
    real = delivery_module.due_page

    def spy(*args, **kwargs):
        page = real(*args, **kwargs)
        pages.append(page)
        return page

    monkeypatch.setattr(delivery_module, "due_page", spy)
    return pages


def test_pages_bound_what_is_loaded_and_deliver_every_field_once(monkeypatch):
    pages = _spy_pages(monkeypatch)
    monkeypatch.setattr(delivery_module, "PAGE_RECORDS", 2)
    bed = Bed()
    bed.load(D1, _fields(7))
    report = bed.run()
    assert report.delivered == 14
    assert [len({c.write.external_id for c in page}) for page in pages] == [2, 2, 2, 1]
    assert all(len(page) == 4 for page in pages[:3])  # both fields of each record on its page
    applied = [(e.record_id, e.field) for e in bed.http.journal.entries]
    assert len(applied) == len(set(applied)) == 14
    assert bed.con.execute(f"SELECT count(*) FROM {QUEUE_TABLE}").fetchall() == [(0,)]


def test_a_sink_that_stopped_is_not_called_again_on_later_pages(monkeypatch):
    pages = _spy_pages(monkeypatch)
    monkeypatch.setattr(delivery_module, "PAGE_RECORDS", 1)
    bed = Bed(routing=Routing(connections=settings(hubspot={"token": "wrong-token"})))
    bed.load(D1, _fields(5, "ic_hs"))
    report = bed.run()
    assert len(pages) == 5
    assert report.delivered == 0 and len(report.stopped) == 1, report.stopped
    assert report.api_calls == 1


def test_a_run_that_lost_the_lease_ending_late_leaves_the_new_holders_queue_alone():
    from datetime import datetime, timezone

    from siro_assets.crm.ledger import drop_due, due_page, ensure_ledger, stage_due

    bed = Bed()
    bed.load(D1, _fields(3))
    ensure_ledger(bed.con)
    now = datetime(2026, 3, 2, tzinfo=timezone.utc)
    assert stage_due(bed.con, "stalled", now) == 3
    assert stage_due(bed.con, "holder", now) == 3  # took the lease over, queued its own
    drop_due(bed.con, "stalled")  # the stalled run ends: before, this dropped the whole queue
    assert len(due_page(bed.con, "holder", 0, 10)) == 6


def test_a_failing_clean_up_never_hides_the_deliverys_own_error(monkeypatch, caplog):
    import duckdb
    import pytest

    bed = Bed()
    bed.load(D1, _fields(2))

    def crm_down(self, settings, due):
        raise RuntimeError("the CRM went away mid-page")

    def locked(con, run_id):
        raise duckdb.IOException("Could not set lock on file")

    monkeypatch.setattr(delivery_module.Delivery, "_deliver_route", crm_down)
    monkeypatch.setattr(delivery_module, "drop_due", locked)
    with caplog.at_level("WARNING"), pytest.raises(RuntimeError, match="the CRM went away"):
        bed.run()
    assert "Clean-up after a failed delivery also failed: IOException: Could not set lock" in caplog.text
    # Its queue rows stay until a later run's stage_due drops them (they are a day old then).
    assert bed.con.execute(f"SELECT count(*) FROM {QUEUE_TABLE}").fetchone()[0] > 0


def test_a_clean_up_error_after_a_good_delivery_fails_the_run_after_every_step(monkeypatch):
    import pytest

    bed = Bed()
    bed.load(D1, _fields(2))
    closed = []
    real_close = delivery_module.Delivery._close_sink

    def close(self, sink):
        closed.append(sink)
        real_close(self, sink)
        raise OSError("socket close failed")

    monkeypatch.setattr(delivery_module.Delivery, "_close_sink", close)
    with pytest.raises(OSError, match="socket close failed"):
        bed.run()
    assert closed  # and the queue was still emptied
    assert bed.con.execute(f"SELECT count(*) FROM {QUEUE_TABLE}").fetchone()[0] == 0
