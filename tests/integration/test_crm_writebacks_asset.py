"""A real Dagster run of `siro/crm_writebacks` and its check, against the fake CRMs
served over HTTP on 127.0.0.1, routed by a YAML file whose secrets come from the
environment."""

from __future__ import annotations

from datetime import date

import pytest
from dagster import materialize

from siro_assets.component.project import project_resources
from tests.default_instance import crm_writebacks, derived_assets, no_outstanding_rejects_or_failures
from siro_assets.pipeline.writebacks.resource import CrmWritebackResource
from fake_crms import FakeCrms, FakeHttpCrm, FakeHubSpot, FakeSalesforce, run_in_thread
from siro_assets.simulator.clock import WallClock
from siro_assets.warehouse.connection import duckdb_connection

from tests.crm_support import SF_ID, crm_block, extraction
from tests.raw_payloads import load_raw, recording

D1 = date(2026, 1, 5)
PLAN = next(a for a in derived_assets if a.key.to_user_string() == "siro/crm_writeback_plan")
SECRET = "sf-secret-do-not-leak"


@pytest.fixture
def fakes():
    clock = WallClock()
    crms = FakeCrms(FakeSalesforce(clock, client_secret=SECRET), FakeHubSpot(clock), FakeHttpCrm(clock))
    base, stop = run_in_thread(crms)
    yield base, crms
    stop()


def _routing_file(tmp_path, base):
    path = tmp_path / "crm.yaml"
    path.write_text(f"""
connections:
  "ic_sf":
    sink: salesforce
    login_url: {base}/salesforce
    client_id: {{env: TEST_SF_CLIENT_ID}}
    client_secret: {{env: TEST_SF_CLIENT_SECRET}}
  "ic_hs":
    sink: hubspot
    base_url: {base}/hubspot
    token: {{env: TEST_HUBSPOT_TOKEN}}
    requests_per_second: 1000
  "*":
    sink: outbox
""")
    return str(path)


def _run(warehouse, crm, **config):
    run_config = {"ops": {"siro__crm_writebacks": {"config": config}}} if config else None
    return materialize(
        [PLAN, crm_writebacks, no_outstanding_rejects_or_failures],
        resources={"siro_warehouse": warehouse, "siro_crm": crm}, partition_key="2026-01-05",
        run_config=run_config, raise_on_error=False,
    )


def test_materialize_writebacks_against_fake_crms(warehouse, fakes, tmp_path, monkeypatch):
    base, crms = fakes
    monkeypatch.setenv("TEST_SF_CLIENT_ID", "fake-client-id")
    monkeypatch.setenv("TEST_SF_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("TEST_HUBSPOT_TOKEN", "fake-hubspot-token")
    with duckdb_connection(warehouse.database) as con:
        load_raw(con, [
            recording("r1", D1, crm=crm_block("ic_sf", opportunity=SF_ID["opportunity"]), entityExtractions=[
                extraction("Closed Won", ("Opportunity", "StageName")),
                extraction("Someday", ("Opportunity", "CloseDate"), name="bad")]),
            recording("r2", D1, crm=crm_block("ic_hs", opportunity="d1"),
                      entityExtractions=[extraction(12, ("Deal", "amount"))]),
            recording("r3", D1, crm=crm_block("ic_other", opportunity="o1"),
                      entityExtractions=[extraction("x", ("Deal", "Stage"))]),
        ], [D1])
    crm = CrmWritebackResource(connections_file=_routing_file(tmp_path, base))

    dry = _run(warehouse, crm, dry_run=True)
    meta = dry.get_asset_materialization_events()[-1].materialization.metadata
    assert meta["dry_run_mode"].value is True and meta["dry_run"].value == 3   # the bad date is a reject
    assert meta["delivered"].value == 0 and crms.salesforce.records == {} and crms.hubspot.records == {}

    result = _run(warehouse, crm)
    meta = result.get_asset_materialization_events()[-1].materialization.metadata
    assert {k: meta[k].value for k in ("delivered", "rejected", "failed", "unchanged")} == {
        "delivered": 3, "rejected": 1, "failed": 0, "unchanged": 0}
    assert meta["api_calls"].value >= 4 and meta["rate_limited_429s"].value == 0
    assert meta["top_error_codes"].value == {"invalid_value": 1}
    assert crms.salesforce.records == {("Opportunity", SF_ID["opportunity"]): {"StageName": "Closed Won"}}
    assert crms.hubspot.records == {("deals", "d1"): {"amount": "12"}}
    [check] = result.get_asset_check_evaluations()
    assert not check.passed and "invalid_value (1)" in check.description
    assert check.metadata["rejected_fields"].value == 1

    # Fix the value: delivered, the check passes, nothing else is re-sent.
    with duckdb_connection(warehouse.database) as con:
        load_raw(con, [
            recording("r1", D1, crm=crm_block("ic_sf", opportunity=SF_ID["opportunity"]), entityExtractions=[
                extraction("Closed Won", ("Opportunity", "StageName")),
                extraction("2026-02-01", ("Opportunity", "CloseDate"), name="bad")]),
            recording("r2", D1, crm=crm_block("ic_hs", opportunity="d1"),
                      entityExtractions=[extraction(12, ("Deal", "amount"))]),
            recording("r3", D1, crm=crm_block("ic_other", opportunity="o1"),
                      entityExtractions=[extraction("x", ("Deal", "Stage"))]),
        ], [D1])
    result = _run(warehouse, crm)
    meta = result.get_asset_materialization_events()[-1].materialization.metadata
    assert (meta["delivered"].value, meta["unchanged"].value) == (1, 3)
    assert result.get_asset_check_evaluations()[0].passed
    assert crms.salesforce.records[("Opportunity", SF_ID["opportunity"])]["CloseDate"] == "2026-02-01"
    # The secret never reached the log, the metadata or the resource's repr.
    with duckdb_connection(warehouse.database, read_only=True) as con:
        assert SECRET not in str(con.execute("SELECT * FROM siro.crm_writeback_log").fetchall())
    assert SECRET not in repr(crm) and SECRET not in str(meta)


def test_resources_bind_crm_variables_with_envvar(monkeypatch):
    for name in ("SIRO_CRM_CONNECTIONS", "SIRO_CRM_SINK", "SIRO_HUBSPOT_TOKEN", "SIRO_CRM_DRY_RUN"):
        monkeypatch.delenv(name, raising=False)
    assert project_resources()["siro_crm"].routing().for_connection("any").sink == "outbox"
    monkeypatch.setenv("SIRO_CRM_SINK", "hubspot")
    monkeypatch.setenv("SIRO_HUBSPOT_TOKEN", "hs-secret-value")
    monkeypatch.setenv("SIRO_CRM_DRY_RUN", "1")
    crm = project_resources()["siro_crm"]
    assert crm.dry_run is True
    assert "hs-secret-value" not in repr(crm)
    # Bound by name; Dagster resolves the value when a run starts.
    assert crm.process_config_and_initialize().routing().for_connection("any").sink == "hubspot"


def test_a_code_server_without_crm_secrets_runs_with_the_runs_secrets(monkeypatch):
    """Loaded where no CRM variable is set, the resource still routes by the run's environment."""
    for name in ("SIRO_CRM_CONNECTIONS", "SIRO_CRM_SINK", "SIRO_CRM_WRITEBACK_URL", "SIRO_CRM_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    crm = project_resources()["siro_crm"].process_config_and_initialize()
    monkeypatch.setenv("SIRO_CRM_SINK", "http")
    monkeypatch.setenv("SIRO_CRM_WRITEBACK_URL", "http://127.0.0.1:9/crm")
    monkeypatch.setenv("SIRO_CRM_TOKEN", "run-only-crm-secret")
    routed = crm.routing().for_connection("any")
    assert routed.sink == "http"
    assert "run-only-crm-secret" not in repr(routed)
