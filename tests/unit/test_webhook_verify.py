"""Signature verification: the Standard Webhooks (Svix) scheme through the library."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone

import pytest
from standardwebhooks import Webhook

from siro_assets.webhooks.verify import (
    TOLERANCE,
    InvalidSecretError,
    SignatureError,
    StandardWebhooksVerifier,
)

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
OTHER = "whsec_" + base64.b64encode(b"another secret, another endpoint").decode()
BODY = b'{"recordingId":"rec_1","recordingProcessed":true,"recordingLinked":false,"eventType":"integrations.recordingProcessed"}'


def svix_headers(body: bytes = BODY, *, secret: str = SECRET, msg_id: str = "msg_1", at: datetime | None = None):
    at = at or datetime.now(timezone.utc)
    signature = Webhook(secret).sign(msg_id, at, body.decode())
    return {"svix-id": msg_id, "svix-timestamp": str(int(at.timestamp())), "svix-signature": signature}


def test_a_request_signed_with_the_secret_verifies_and_names_its_message():
    delivery = StandardWebhooksVerifier(SECRET).verify(BODY, svix_headers())
    assert delivery.message_id == "msg_1"


def test_the_standard_webhooks_header_names_verify_too():
    headers = {k.replace("svix-", "webhook-"): v for k, v in svix_headers().items()}
    assert StandardWebhooksVerifier(SECRET).verify(BODY, headers).message_id == "msg_1"


def test_several_signatures_pass_if_one_matches_as_during_a_secret_rotation():
    headers = svix_headers()
    old = svix_headers(secret=OTHER)["svix-signature"]
    headers["svix-signature"] = f"{old} {headers['svix-signature']}"
    assert StandardWebhooksVerifier(SECRET).verify(BODY, headers).message_id == "msg_1"



THIRD = "whsec_" + base64.b64encode(b"a third secret nobody registered").decode()


def test_a_variable_holding_two_secrets_verifies_either_as_during_a_rotation():
    # Svix keeps the old secret valid for 24 h after a rotation: the variable holds
    # "new old" (space separated), and a request signed with only one of them passes.
    verifier = StandardWebhooksVerifier(f"{SECRET} {OTHER}")
    assert verifier.verify(BODY, svix_headers(secret=SECRET)).message_id == "msg_1"
    assert verifier.verify(BODY, svix_headers(secret=OTHER)).message_id == "msg_1"
    with pytest.raises(SignatureError, match="No matching signature"):
        verifier.verify(BODY, svix_headers(secret=THIRD))
    stale = datetime.now(timezone.utc) - TOLERANCE - timedelta(seconds=30)
    with pytest.raises(SignatureError, match="too old"):
        verifier.verify(BODY, svix_headers(secret=OTHER, at=stale))


def test_two_secrets_hide_both_and_an_unusable_one_is_refused_without_echoing_either():
    verifier = StandardWebhooksVerifier(f"  {SECRET}   {OTHER} ")
    for raw in (SECRET.removeprefix("whsec_"), OTHER.removeprefix("whsec_")):
        assert raw not in repr(verifier) and raw not in str(vars(verifier))
    with pytest.raises(InvalidSecretError) as caught:
        StandardWebhooksVerifier(f"{SECRET} whsec_***")
    assert SECRET.removeprefix("whsec_") not in str(caught.value) and "2nd" in str(caught.value)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda h, b: ({**h, "svix-signature": "v1,AAAA"}, b), id="forged-signature"),
        pytest.param(lambda h, b: ({**h, "svix-signature": "garbage"}, b), id="signature-without-version"),
        pytest.param(lambda h, b: ({**h, "svix-signature": "v1,!!notbase64!!"}, b), id="signature-not-base64"),
        pytest.param(lambda h, b: (svix_headers(secret=OTHER), b), id="wrong-secret"),
        pytest.param(lambda h, b: (h, b.replace(b"rec_1", b"rec_2")), id="body-changed"),
        pytest.param(lambda h, b: ({**h, "svix-id": "msg_2"}, b), id="id-changed"),
        pytest.param(lambda h, b: (svix_headers(at=datetime.now(timezone.utc) - TOLERANCE - timedelta(seconds=30)), b),
                     id="stale-timestamp"),
        pytest.param(lambda h, b: (svix_headers(at=datetime.now(timezone.utc) + TOLERANCE + timedelta(seconds=30)), b),
                     id="future-timestamp"),
        pytest.param(lambda h, b: ({**h, "svix-timestamp": "yesterday"}, b), id="timestamp-not-a-number"),
        pytest.param(lambda h, b: ({k: v for k, v in h.items() if k != "svix-id"}, b), id="missing-id"),
        pytest.param(lambda h, b: ({k: v for k, v in h.items() if k != "svix-timestamp"}, b), id="missing-timestamp"),
        pytest.param(lambda h, b: ({k: v for k, v in h.items() if k != "svix-signature"}, b), id="missing-signature"),
        pytest.param(lambda h, b: ({}, b), id="no-headers"),
        pytest.param(lambda h, b: (h, b"\xff\xfe" + b), id="body-not-utf8"),
    ],
)
def test_every_tampered_request_is_a_signature_error(tamper):
    headers, body = tamper(svix_headers(), BODY)
    with pytest.raises(SignatureError):
        StandardWebhooksVerifier(SECRET).verify(body, headers)


def test_the_tolerance_is_five_minutes():
    assert TOLERANCE == timedelta(minutes=5)
    inside = datetime.now(timezone.utc) - TOLERANCE + timedelta(seconds=30)
    assert StandardWebhooksVerifier(SECRET).verify(BODY, svix_headers(at=inside)).message_id == "msg_1"


def test_the_secret_is_in_no_repr_and_no_error():
    verifier = StandardWebhooksVerifier(SECRET)
    raw = SECRET.removeprefix("whsec_")
    assert raw not in repr(verifier) and raw not in str(vars(verifier))
    with pytest.raises(SignatureError) as caught:
        verifier.verify(BODY, svix_headers(secret=OTHER))
    assert raw not in str(caught.value)


@pytest.mark.parametrize("secret", ["", "whsec_", "whsec_***not base64***"])
def test_an_unusable_secret_is_refused_without_echoing_it(secret):
    with pytest.raises(InvalidSecretError) as caught:
        StandardWebhooksVerifier(secret)
    if secret.removeprefix("whsec_"):
        assert secret.removeprefix("whsec_") not in str(caught.value)
