"""A replay reaches the webhook sensor: its cursor is past the originals, the replay is past it."""

from __future__ import annotations

from siro_assets.pipeline.ingest.refresh import RECORDING_IDS_TAG
from siro_assets.webhooks.__main__ import main
from siro_assets.webhooks.inbox import inbox_path_for
from tests.integration.test_sensor import find_late_link
from tests.integration.test_webhook_sensor import _notify, _tick
from tests.support import simulated_siro


def test_a_replayed_recording_is_requested_again_by_the_next_tick(warehouse):
    rid, _created, _linked = find_late_link()
    siro = simulated_siro()
    _notify(warehouse, rid, "msg_1")
    first = _tick(siro, warehouse)
    (request,) = first.run_requests
    assert not _tick(siro, warehouse, first.cursor).run_requests  # drained: nothing more

    inbox = str(inbox_path_for(warehouse.database))
    assert main(["replay", "--endpoint", "siro", "--inbox", inbox, "--since", "2000-01-01T00:00:00Z"]) == 0
    again = _tick(siro, warehouse, first.cursor)
    (replayed,) = again.run_requests
    assert replayed.tags[RECORDING_IDS_TAG] == rid and replayed.run_key != request.run_key

    assert main(["replay", "--endpoint", "siro", "--inbox", inbox, "--ids", rid]) == 0
    (by_id,) = _tick(siro, warehouse, again.cursor).run_requests
    assert by_id.tags[RECORDING_IDS_TAG] == rid and by_id.run_key not in (request.run_key, replayed.run_key)
