"""The receiver app: what it accepts, what it refuses (and with which status), what it stores."""

from __future__ import annotations

import json
import logging
import warnings
from datetime import datetime, timedelta, timezone

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette 1.x warns that it would rather have httpx2
    from starlette.testclient import TestClient

from siro_assets.webhooks.app import DEFAULT_MAX_BODY_BYTES, Endpoint, create_app
from siro_assets.webhooks.inbox import SqliteInbox
from siro_assets.webhooks.verify import StandardWebhooksVerifier

from .test_webhook_verify import OTHER, SECRET, svix_headers

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

PROCESSED = {
    "recordingId": "rec_20260301_0001_deadbeef",
    "siroUserId": "usr_1",
    "recordingProcessed": True,
    "recordingLinked": False,
    "eventType": "integrations.recordingProcessed",
}
LINKED = {
    **PROCESSED,
    "recordingLinked": True,
    "eventType": "integrations.recordingLinked",
    "crm": {"integrationConnectionId": "ic_1", "opportunity": {"id": "opp_1", "externalId": "006X"},
            "contacts": [{"id": "con_1", "externalId": "003X"}]},
}


@pytest.fixture
def inbox(tmp_path):
    box = SqliteInbox(tmp_path / "w.webhooks.sqlite", capacity=3)
    yield box
    box.close()


@pytest.fixture
def client(inbox):
    endpoints = [Endpoint("siro", StandardWebhooksVerifier(SECRET)), Endpoint("west", StandardWebhooksVerifier(OTHER))]
    with TestClient(create_app(endpoints, inbox)) as c:
        yield c


def body_of(payload) -> bytes:
    return json.dumps(payload).encode()


def post(client, payload=PROCESSED, *, path="/webhooks/siro", msg_id="msg_1", secret=SECRET,
         headers=None, content_type="application/json", body=None, at=None):
    raw = body if body is not None else body_of(payload)
    sent = {"content-type": content_type, **svix_headers(raw, secret=secret, msg_id=msg_id, at=at)}
    if headers is not None:
        sent = {"content-type": content_type, **headers}
    return client.post(path, content=raw, headers=sent)


def test_a_signed_event_is_stored_and_acknowledged(client, inbox):
    response = post(client, LINKED)
    assert response.status_code == 200 and response.json() == {"status": "stored"}
    [stored] = inbox.read_after(0, 10)
    assert (stored.endpoint, stored.message_id, stored.recording_id, stored.event_type) == (
        "siro", "msg_1", LINKED["recordingId"], "integrations.recordingLinked")
    assert stored.payload == LINKED


def test_each_endpoint_has_its_own_path_and_secret(client, inbox):
    assert post(client, path="/webhooks/west", secret=OTHER).status_code == 200
    assert post(client, path="/webhooks/west", secret=SECRET, msg_id="msg_2").status_code == 401
    assert [e.endpoint for e in inbox.read_after(0, 10)] == ["west"]


def test_a_replayed_svix_id_is_acknowledged_but_not_enqueued_again(client, inbox):
    assert post(client).json() == {"status": "stored"}
    # A fresh signature on the same id, as Svix sends when it retries after a lost 2xx.
    replay = post(client, at=datetime.now(timezone.utc) + timedelta(seconds=5))
    assert replay.status_code == 200 and replay.json() == {"status": "duplicate"}
    assert inbox.count() == 1


def _missing(name):
    return lambda: {k: v for k, v in svix_headers(body_of(PROCESSED)).items() if k != name}


REFUSALS = [
    pytest.param(dict(headers={**svix_headers(body_of(PROCESSED)), "svix-signature": "v1,Zm9yZ2Vk"}), 401,
                 id="forged-signature"),
    pytest.param(dict(secret=OTHER), 401, id="wrong-secret"),
    pytest.param(dict(at=datetime.now(timezone.utc) - timedelta(minutes=6)), 401, id="stale-timestamp"),
    pytest.param(dict(headers=_missing("svix-id")()), 401, id="missing-svix-id"),
    pytest.param(dict(headers=_missing("svix-timestamp")()), 401, id="missing-svix-timestamp"),
    pytest.param(dict(headers=_missing("svix-signature")()), 401, id="missing-svix-signature"),
    pytest.param(dict(headers={}), 401, id="no-signature-headers"),
    pytest.param(dict(content_type="text/plain"), 415, id="not-json-content-type"),
    pytest.param(dict(content_type="application/x-www-form-urlencoded"), 415, id="form-content-type"),
    pytest.param(dict(body=b"recordingId=rec_1"), 400, id="signed-body-not-json"),
    pytest.param(dict(body=b"[1, 2]"), 400, id="signed-body-not-an-object"),
    pytest.param(dict(payload={k: v for k, v in PROCESSED.items() if k != "recordingId"}), 400, id="no-recordingId"),
    pytest.param(dict(payload={**PROCESSED, "recordingProcessed": "true"}), 400, id="boolean-as-string"),
    pytest.param(dict(payload={**PROCESSED, "eventType": 7}), 400, id="eventType-not-a-string"),
    pytest.param(dict(payload={**LINKED, "crm": {"users": []}}), 400, id="crm-without-connection-id"),
    pytest.param(dict(body=b'{"recordingId": "' + b"x" * DEFAULT_MAX_BODY_BYTES + b'"}'), 413, id="oversized"),
    pytest.param(dict(path="/webhooks/unknown"), 404, id="unknown-endpoint"),
]


@pytest.mark.parametrize("kwargs, status", REFUSALS)
def test_every_refusal_has_its_status_and_enqueues_nothing(client, inbox, kwargs, status):
    assert post(client, **kwargs).status_code == status
    assert inbox.count() == 0


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_a_wrong_method_is_405_and_enqueues_nothing(client, inbox, method):
    raw = body_of(PROCESSED)
    response = client.request(method, "/webhooks/siro", content=raw,
                              headers={"content-type": "application/json", **svix_headers(raw)})
    assert response.status_code == 405
    assert inbox.count() == 0


def test_a_body_without_content_length_is_cut_off_at_the_limit(client, inbox):
    sent = []

    def chunks():
        for _ in range(64):
            sent.append(1)
            yield b"x" * 8192  # 512 KiB in all, no Content-Length (chunked)

    response = client.post("/webhooks/siro", content=chunks(),
                           headers={"content-type": "application/json", **svix_headers(b"x")})
    assert response.status_code == 413
    assert inbox.count() == 0


def test_a_declared_oversized_body_is_refused_before_it_is_read(client, inbox):
    headers = {"content-type": "application/json", "content-length": str(DEFAULT_MAX_BODY_BYTES + 1),
               **svix_headers(b"{}")}
    response = client.post("/webhooks/siro", content=b"{}", headers=headers)
    # The declared length is judged; the (short) body is never looked at.
    assert response.status_code == 413
    assert inbox.count() == 0


def test_a_full_inbox_answers_503_so_the_sender_retries(client, inbox):
    for n in range(3):
        assert post(client, msg_id=f"msg_{n}").status_code == 200
    response = post(client, msg_id="msg_new")
    assert response.status_code == 503 and "retry-after" in response.headers
    assert inbox.count() == 3
    assert post(client, msg_id="msg_1").json() == {"status": "duplicate"}


def test_health_reports_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_the_secret_never_reaches_the_log(client, caplog):
    caplog.set_level(logging.DEBUG)
    post(client)
    post(client, secret=OTHER, msg_id="msg_2")
    post(client, body=b"nope", msg_id="msg_3")
    post(client, headers={"svix-signature": SECRET})  # even a secret pasted into a header
    raw = SECRET.removeprefix("whsec_")
    assert caplog.records, "the receiver logs its decisions"
    assert raw not in caplog.text


class _UnreachableInbox(SqliteInbox):
    def append(self, event):
        raise OSError("could not connect to server: Connection refused")


def test_an_unreachable_inbox_answers_503_and_each_endpoint_uses_its_own_inbox(tmp_path):
    west = SqliteInbox(tmp_path / "west.sqlite")
    broken = _UnreachableInbox(tmp_path / "siro.sqlite")
    endpoints = [Endpoint("siro", StandardWebhooksVerifier(SECRET), broken),
                 Endpoint("west", StandardWebhooksVerifier(OTHER), west)]
    with TestClient(create_app(endpoints), raise_server_exceptions=False) as c:
        response = post(c)
        assert response.status_code == 503 and "retry-after" in response.headers  # not stored: Svix retries
        assert post(c, path="/webhooks/west", secret=OTHER).json() == {"status": "stored"}
    assert [e.endpoint for e in west.read_after(0, 10)] == ["west"] and broken.count() == 0
    west.close()
    broken.close()
