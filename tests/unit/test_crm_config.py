"""Routing: the YAML file, `{env: NAME}` secrets, the `"*"` default, the env-var fallback."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from siro_assets.crm.config import (
    CrmConfigError, HubSpotSettings, OutboxSettings, SalesforceSettings, load_routing,
)

SECRET = "s3cr3t-value-never-shown"

FILE = """
connections:
  "ic_abc123":
    sink: salesforce
    login_url: https://acme.my.salesforce.com
    client_id: {env: SF_CLIENT_ID}
    client_secret: {env: SF_CLIENT_SECRET}
    api_version: "62.0"
    object_types: {engagement: Task}
  "ic_def456":
    sink: hubspot
    base_url: https://api.hubapi.com
    token: {env: HUBSPOT_TOKEN}
    write_nulls: true
  "*":
    sink: outbox
"""


def write(tmp_path, text):
    path = tmp_path / "crm.yaml"
    path.write_text(text)
    return {"SIRO_CRM_CONNECTIONS": str(path), "SF_CLIENT_ID": "cid", "SF_CLIENT_SECRET": SECRET,
            "HUBSPOT_TOKEN": SECRET}


def test_routing_file_with_env_secrets_and_a_default(tmp_path):
    routing = load_routing(write(tmp_path, FILE))
    sf = routing.for_connection("ic_abc123")
    assert isinstance(sf, SalesforceSettings) and sf.client_secret.get_secret_value() == SECRET
    assert sf.object_types["engagement"] == "Task"
    assert isinstance(routing.for_connection("ic_def456"), HubSpotSettings)
    assert routing.for_connection("ic_def456").write_nulls is True
    assert isinstance(routing.for_connection("ic_anything"), OutboxSettings)
    assert SECRET not in repr(routing) and SECRET not in str(routing.model_dump())
    # The fingerprint ignores secrets but not settings.
    assert sf.fingerprint() == sf.model_copy(update={"client_secret": SecretStr("other")}).fingerprint()
    assert sf.fingerprint() != sf.model_copy(update={"api_version": "61.0"}).fingerprint()


def test_without_a_default_an_unknown_connection_has_no_route(tmp_path):
    env = write(tmp_path, "connections:\n  ic_x: {sink: outbox}\n")
    assert load_routing(env).for_connection("ic_y") is None


def test_a_missing_variable_is_named_never_its_value(tmp_path):
    env = write(tmp_path, FILE)
    del env["HUBSPOT_TOKEN"]
    with pytest.raises(CrmConfigError, match="HUBSPOT_TOKEN is not set"):
        load_routing(env)


def test_secrets_must_come_from_the_environment(tmp_path):
    env = write(tmp_path, f"connections:\n  '*': {{sink: hubspot, token: {SECRET}}}\n")
    with pytest.raises(CrmConfigError) as exc:
        load_routing(env)
    assert "{env: NAME}" in str(exc.value) and SECRET not in str(exc.value)


@pytest.mark.parametrize("text, message", [
    ("connections: [1]", "must have a `connections:` mapping"),
    ("connections:\n  '*': {sink: carrier_pigeon}", "connections['*']"),
    ("connections:\n  '*': {sink: salesforce, client_id: x, client_secret: {env: SF_CLIENT_SECRET}}", "login_url"),
    ("connections:\n  '*': {sink: outbox, colour: blue}", "colour"),
    ("connections: {a: [}", "not valid YAML"),
])
def test_bad_files_get_clear_errors(tmp_path, text, message):
    with pytest.raises(CrmConfigError, match=None) as exc:
        load_routing(write(tmp_path, text))
    assert message in str(exc.value) and SECRET not in str(exc.value)


def test_without_a_file_one_sink_from_the_documented_variables():
    assert isinstance(load_routing({}).for_connection("x"), OutboxSettings)
    sf = load_routing({"SIRO_CRM_SINK": "salesforce", "SIRO_SALESFORCE_LOGIN_URL": "https://x.my.salesforce.com",
                       "SIRO_SALESFORCE_CLIENT_ID": "id", "SIRO_SALESFORCE_CLIENT_SECRET": SECRET,
                       "SIRO_SALESFORCE_API_VERSION": "61.0"}).for_connection("x")
    assert sf.api_version == "61.0" and SECRET not in repr(sf)
    http = load_routing({"SIRO_CRM_SINK": "http", "SIRO_CRM_WRITEBACK_URL": "https://mw/x",
                         "SIRO_CRM_TOKEN": SECRET}).for_connection("x")
    assert http.url == "https://mw/x" and http.token.get_secret_value() == SECRET
    with pytest.raises(CrmConfigError, match="SIRO_HUBSPOT_TOKEN"):
        load_routing({"SIRO_CRM_SINK": "hubspot"})
    with pytest.raises(CrmConfigError, match="must be one of"):
        load_routing({"SIRO_CRM_SINK": "fax"})


@pytest.mark.parametrize("ending", ["\n", "\r\n", " \t"])
def test_secrets_are_stripped_when_loaded(tmp_path, ending):
    env = {**write(tmp_path, FILE), "SF_CLIENT_ID": "cid" + ending, "SF_CLIENT_SECRET": SECRET + ending,
           "HUBSPOT_TOKEN": ending + SECRET + ending}
    routing = load_routing(env)
    sf, hs = routing.for_connection("ic_abc123"), routing.for_connection("ic_def456")
    assert (sf.client_id.get_secret_value(), sf.client_secret.get_secret_value()) == ("cid", SECRET)
    assert hs.token.get_secret_value() == SECRET
    http = load_routing({"SIRO_CRM_SINK": "http", "SIRO_CRM_WRITEBACK_URL": "https://mw/x",
                         "SIRO_CRM_TOKEN": SECRET + ending}).for_connection("x")
    assert http.token.get_secret_value() == SECRET


@pytest.mark.parametrize("bad", [SECRET[:6] + "\n" + SECRET[6:], SECRET + "\x00", SECRET[:3] + "\x1b" + SECRET[3:],
                                 SECRET + "\u00e9", "\r\n"])
def test_a_secret_with_a_control_character_is_refused_naming_the_setting(tmp_path, bad):
    env = {**write(tmp_path, FILE), "HUBSPOT_TOKEN": bad}
    with pytest.raises(CrmConfigError) as exc:
        load_routing(env)
    message = str(exc.value)
    assert "connections['ic_def456']: token (from HUBSPOT_TOKEN)" in message
    assert SECRET[:6] not in message
    with pytest.raises(CrmConfigError) as exc:
        load_routing({"SIRO_CRM_SINK": "hubspot", "SIRO_HUBSPOT_TOKEN": bad})
    assert "SIRO_HUBSPOT_TOKEN" in str(exc.value) and SECRET[:6] not in str(exc.value)
    # Built in code, the settings refuse it too, and pydantic's error does not quote it.
    with pytest.raises(ValueError) as exc:
        HubSpotSettings(token=bad)
    assert "token" in str(exc.value) and SECRET[:6] not in str(exc.value)
