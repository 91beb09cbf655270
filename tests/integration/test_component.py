"""`SiroComponent` as a user's project adds it: minimal YAML, merged with the user's own
executor and resources, two organizations side by side, no simulator in production."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from dagster import (
    AssetKey,
    ConfigurableResource,
    DagsterInstance,
    EnvVar,
    Definitions,
    asset,
    build_defs_for_component,
    multiprocess_executor,
)

from siro_assets import SiroComponent
from siro_assets.pipeline.resources import SiroApiResource
from siro_assets.simulator.resource import SimulatedSiroApiResource

ROOT = Path(__file__).resolve().parents[2]
DAY = "2026-03-02"


def _instance(yaml_text: str) -> SiroComponent:
    return SiroComponent.resolve_from_yaml(yaml_text)


def test_a_defs_yaml_with_only_the_token_variable_works():
    component = _instance("api:\n  token_env: ACME_SIRO_TOKEN\n")
    defs = build_defs_for_component(component)
    keys = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    assert {"siro/recordings", "siro/recording_crm", "siro/crm_writebacks"} <= keys
    api = defs.resources["siro_api"]
    # Only the variable's name is bound; its value is read when a run or tick starts.
    assert type(api) is SiroApiResource
    assert "ACME_SIRO_TOKEN" in repr(api.token) or getattr(api.token, "env_var", None) == "ACME_SIRO_TOKEN"
    assert defs.resources["siro_warehouse"].database == str(Path("data") / "siro.duckdb")


def test_bad_attributes_fail_with_the_attribute_named():
    with pytest.raises(Exception, match="partitions_start"):
        build_defs_for_component(_instance("partitions_start: not-a-date\n"))
    with pytest.raises(Exception, match="tick_seconds"):
        build_defs_for_component(_instance("sensor: {tick_seconds: 90}\n"))


class _UsersOwnResource(ConfigurableResource):
    label: str


def test_merges_into_a_project_with_its_own_executor_and_resources_named_warehouse_and_crm(tmp_path):
    @asset(required_resource_keys={"warehouse", "crm"})
    def users_own_asset(context) -> None:
        assert context.resources.warehouse.label == "the user's warehouse"

    siro = _instance(f"""
api: {{simulator: {{enabled: true}}}}
warehouse: {{path: "{tmp_path / 'siro_wh.duckdb'}"}}
""")
    users = Definitions(
        assets=[users_own_asset],
        resources={"warehouse": _UsersOwnResource(label="the user's warehouse"),
                   "crm": _UsersOwnResource(label="the user's crm")},
        executor=multiprocess_executor,
    )
    merged = Definitions.merge(build_defs_for_component(siro), users)
    merged.get_repository_def().load_all_definitions()
    # The user's executor stays the code location's; the siro job carries its own.
    job = merged.resolve_job_def("siro_recordings_job")
    assert job.executor_def.name == "in_process"
    assert merged.resolve_implicit_global_asset_job_def().executor_def.name == "multiprocess"
    with DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(instance=instance, partition_key=DAY)
        assert result.success
        users_job = merged.resolve_implicit_global_asset_job_def()
        assert users_job.execute_in_process(instance=instance, asset_selection=[AssetKey("users_own_asset")]).success
    with duckdb.connect(str(tmp_path / "siro_wh.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM siro.recordings").fetchall()[0][0] > 0


def _org(prefix: str, seed: int, tmp_path: Path) -> SiroComponent:
    return _instance(f"""
key_prefix: {prefix}
api:
  token_env: {prefix.upper()}_TOKEN
  simulator: {{enabled: true, seed: {seed}}}
warehouse: {{path: "{tmp_path / (prefix + '.duckdb')}"}}
""")


def test_two_organizations_side_by_side_touch_nothing_of_each_other(tmp_path):
    west, east = _org("siro_west", 7, tmp_path), _org("siro_east", 11, tmp_path)
    defs = Definitions.merge(build_defs_for_component(west), build_defs_for_component(east))
    repo = defs.get_repository_def()
    repo.load_all_definitions()
    assert {s.name for s in repo.sensor_defs} == {
        "siro_west_recordings_updated_sensor", "siro_east_recordings_updated_sensor"}
    assert {s.name for s in repo.schedule_defs} >= {
        "siro_west_nightly_recordings_schedule", "siro_east_nightly_recordings_schedule"}
    assert {"siro_west_api", "siro_west_warehouse", "siro_west_crm", "siro_east_api"} <= set(defs.resources)
    assert isinstance(defs.resources["siro_west_api"], SimulatedSiroApiResource)
    keys = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    assert {"siro_west/recordings", "siro_east/recordings"} <= keys
    with DagsterInstance.ephemeral() as instance:
        west_job = defs.resolve_job_def("siro_west_recordings_job")
        assert {k.path[0] for k in west_job.asset_layer.executable_asset_keys} == {"siro_west"}
        assert west_job.execute_in_process(instance=instance, partition_key=DAY).success
        # A run of one organization touches nothing of the other.
        assert not (tmp_path / "siro_east.duckdb").exists()
        assert defs.resolve_job_def("siro_east_recordings_job").execute_in_process(
            instance=instance, partition_key=DAY).success
    counts = {}
    for prefix in ("siro_west", "siro_east"):
        with duckdb.connect(str(tmp_path / f"{prefix}.duckdb"), read_only=True) as con:
            counts[prefix] = con.execute("SELECT list(id ORDER BY id) FROM siro.recordings").fetchall()[0][0]
    assert counts["siro_west"] and counts["siro_east"] and counts["siro_west"] != counts["siro_east"]


def test_loading_the_production_defs_yaml_imports_no_simulator_module(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIRO_")}
    env["PYTHONPATH"] = str(ROOT)
    code = (
        "import json, sys\n"
        "from siro_assets.definitions import defs\n"
        "defs.get_repository_def().load_all_definitions()\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('siro_assets.simulator'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_a_ducklake_warehouse_block_binds_the_catalog_by_name_only(monkeypatch):
    # The DSN holds the catalog's password: only the variable's name is bound at load time.
    monkeypatch.setenv("ACME_LAKE_DSN", "host=db password=s3cret-dsn dbname=lake")
    component = _instance(
        "warehouse:\n  backend: ducklake\n  catalog_env: ACME_LAKE_DSN\n  data_path: s3://bucket/lake/\n"
    )
    warehouse = build_defs_for_component(component).resources["siro_warehouse"]
    assert warehouse.backend == "ducklake"
    assert warehouse.ducklake_data_path == "s3://bucket/lake/"
    assert isinstance(warehouse.ducklake_catalog, EnvVar) and warehouse.ducklake_catalog.env_var_name == "ACME_LAKE_DSN"
    assert "s3cret-dsn" not in repr(warehouse) + repr(component)


def test_the_warehouse_backend_must_be_duckdb_or_ducklake():
    with pytest.raises(Exception, match="backend"):
        build_defs_for_component(_instance("warehouse: {backend: postgres}\n"))


def test_webhook_runs_check_what_the_webhooks_checks_attribute_says():
    essential = _instance("webhooks: {enabled: true}\n")
    assert essential.webhooks.checks == "essential"
    assert _instance("webhooks: {enabled: true, checks: all}\n").webhooks.checks == "all"
    with pytest.raises(Exception, match="checks"):
        build_defs_for_component(_instance("webhooks: {enabled: true, checks: some}\n"))
