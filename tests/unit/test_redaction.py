"""One scrubbing registry: every configured secret, in the forms an error echoes it, is
masked; the Siro token is stripped and registered where the resource resolves it."""

from __future__ import annotations

import json
from urllib.parse import quote_plus

import pytest

from siro_assets import redaction
from siro_assets.crm.calls import CrmUnreachable
from siro_assets.crm.sinks import DeliveryStopped
from siro_assets.crm.writes import FAILED, FieldWrite, Outcome
from siro_assets.pipeline.resources import MissingTokenError, SiroApiResource
from siro_assets.simulator.resource import SimulatedSiroApiResource


def test_scrub_masks_every_form_a_secret_is_echoed_in():
    secret = "s3cr/t+v=lue\"x"
    redaction.register(secret + "\n")
    for echoed in (secret, quote_plus(secret), json.dumps(secret)[1:-1], repr(f"Bearer {secret}\r\n".encode())):
        assert secret not in redaction.scrub(f"error: {echoed} again {echoed}")
        assert "***" in redaction.scrub(f"error: {echoed}")
    assert redaction.scrub(None) is None and redaction.scrub("") == ""
    redaction.register("abc", "", None)     # too short to mask without garbling every message
    assert redaction.scrub("abc") == "abc"


def test_crm_errors_and_outcomes_are_scrubbed_when_built():
    redaction.register("tok-9f8e7d6c")
    write = FieldWrite("ic", "opportunity", "o1", "note", "Note", "Opportunity", "v", "r1", "k")
    outcome = Outcome(write, FAILED, 500, "tok-9f8e7d6c", "LocalProtocolError: b'Bearer tok-9f8e7d6c\\n'")
    assert (outcome.error_code, outcome.error_message) == ("***", "LocalProtocolError: b'Bearer ***\\n'")
    assert "tok-9f8e7d6c" not in str(CrmUnreachable("PATCH x: Illegal header value b'Bearer tok-9f8e7d6c\\n'"))
    stopped = DeliveryStopped("tok-9f8e7d6c", "refused tok-9f8e7d6c", [outcome])
    assert "tok-9f8e7d6c" not in f"{stopped} {stopped.code} {stopped.message}"


@pytest.mark.parametrize("ending", ["\n", "\r\n"])
def test_the_siro_token_is_stripped_and_registered_where_it_is_resolved(ending):
    token = "siro-org-token-" + ending.encode().hex()
    resource = SimulatedSiroApiResource(token=token + ending)
    with resource.client() as client:
        assert client.caller_identity().organization_id
    # Registered: a CRM error that quotes it (or any other scrubbed text) masks it.
    assert token not in str(CrmUnreachable(f"POST https://crm/x: echoed {token}"))
    with pytest.raises(MissingTokenError):
        SiroApiResource(token=ending).client()
