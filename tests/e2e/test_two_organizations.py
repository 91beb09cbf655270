"""End to end: two Siro organizations (two simulators, two tokens) in one code location.

Two `SiroComponent` instances, each with its own key prefix, token variable, API and
warehouse file, loaded from their own `defs.yaml` files the way `dg` does. The `dagster`
CLI materializes each over HTTP; GraphQL lists both sets of assets, sensors and
schedules; each warehouse equals its own organization's truth; a run of one touches
nothing of the other, and one organization's dead API never blocks the other's runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from contextlib import ExitStack
from datetime import date, timedelta
from pathlib import Path

import pytest

from siro_assets.pipeline.partitions import day_start
from siro_assets.simulator import World, WorldConfig
from siro_assets.warehouse.connection import duckdb_connection
from tests.e2e.processes import ROOT, simulator
from tests.support import NOW

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
DAY = date(2026, 3, 2)
ORGS = {
    # prefix: (seed, organization id, token)
    "siro_west": (7, "org_west", "west-token-1"),
    "siro_east": (11, "org_east", "east-token-2"),
}

DEFS_PY = """
from pathlib import Path

import dagster as dg

defs = dg.Definitions.merge(
    dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
    dg.Definitions(executor=dg.in_process_executor),
)
"""

GRAPHQL = """
{ repositoryOrError(repositorySelector: {repositoryName: "__repository__", repositoryLocationName: "orgs.definitions"}) {
    ... on Repository { assetNodes { assetKey { path } } sensors { name } schedules { name } }
    ... on PythonError { message } } }
"""


@pytest.fixture
def project(tmp_path):
    """A dg-style project with one defs folder per organization, and both simulators."""
    with ExitStack() as servers:
        urls = {prefix: servers.enter_context(simulator(token, NOW, "--seed", str(seed), "--organization-id", org))
                for prefix, (seed, org, token) in ORGS.items()}
        package = tmp_path / "orgs"
        (package / "defs").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "defs" / "__init__.py").write_text("")
        (package / "definitions.py").write_text(DEFS_PY)
        (tmp_path / "pyproject.toml").write_text(textwrap.dedent("""\
            [tool.dg]
            directory_type = "project"
            [tool.dg.project]
            root_module = "orgs"
            code_location_name = "orgs"
            """))
        for prefix in ORGS:
            folder = package / "defs" / prefix
            folder.mkdir()
            (folder / "defs.yaml").write_text(textwrap.dedent(f"""\
                type: siro_assets.SiroComponent
                attributes:
                  key_prefix: {prefix}
                  api:
                    base_url: "{{{{ env('{prefix.upper()}_URL') }}}}"
                    token_env: {prefix.upper()}_TOKEN
                  warehouse:
                    path: {tmp_path / (prefix + '.duckdb')}
                """))
        home = tmp_path / "home"
        home.mkdir()
        (home / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIRO_")}
        env.update(DAGSTER_HOME=str(home), PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
        env.update({f"{prefix.upper()}_TOKEN": token for prefix, (_, _, token) in ORGS.items()})
        env.update({f"{prefix.upper()}_URL": url for prefix, url in urls.items()})
        yield tmp_path, env, urls


def _materialize(tmp_path: Path, env: dict, prefix: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "dagster"), "asset", "materialize", "-m", "orgs.definitions", "--select", f"{prefix}/recordings*",
         "--partition", DAY.isoformat()],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )


def _truth_ids(seed: int, org: str) -> list[str]:
    world = World(WorldConfig(seed=seed, organization_id=org))
    records = world.recordings(NOW, created_from=day_start(DAY), created_to=day_start(DAY + timedelta(days=1)))
    return sorted(r["id"] for r in records)


def test_two_organizations_run_side_by_side_each_exact(project):
    tmp_path, env, urls = project
    listed = subprocess.run(
        [str(BIN / "dagster-graphql"), "-m", "orgs.definitions", "-t", GRAPHQL],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert listed.returncode == 0, listed.stderr[-2000:]
    # dagster-graphql prints the result after any load-time log lines.
    document, _ = json.JSONDecoder().raw_decode(listed.stdout[listed.stdout.index('{"data"'):])
    repo = document["data"]["repositoryOrError"]
    keys = {"/".join(node["assetKey"]["path"]) for node in repo["assetNodes"]}
    assert {"siro_west/recordings", "siro_east/recordings", "siro_west/recording_crm", "siro_east/crm_writebacks"} <= keys
    assert {s["name"] for s in repo["sensors"]} == {
        "siro_west_recordings_updated_sensor", "siro_east_recordings_updated_sensor"}
    assert {"siro_west_nightly_recordings_schedule", "siro_east_nightly_recordings_schedule"} <= {
        s["name"] for s in repo["schedules"]}

    west = _materialize(tmp_path, env, "siro_west")
    assert west.returncode == 0, west.stdout[-3000:] + west.stderr[-3000:]
    assert not (tmp_path / "siro_east.duckdb").exists()  # a run of one touches nothing of the other

    # East's token is wrong on purpose first: its failure leaves west's tables untouched.
    broken = _materialize(tmp_path, {**env, "SIRO_EAST_TOKEN": "not-easts-token"}, "siro_east")
    assert broken.returncode != 0 and "not-easts-token" not in broken.stdout + broken.stderr
    east = _materialize(tmp_path, env, "siro_east")
    assert east.returncode == 0, east.stdout[-3000:] + east.stderr[-3000:]

    for prefix, (seed, org, _) in ORGS.items():
        with duckdb_connection(tmp_path / f"{prefix}.duckdb", read_only=True) as con:
            ids = [r[0] for r in con.execute("SELECT id FROM siro.recordings ORDER BY id").fetchall()]
            recorded = con.execute("SELECT count(*) FROM siro.recording_crm").fetchall()[0][0]
        assert ids == _truth_ids(seed, org), prefix
        assert recorded > 0
    # The organization guard holds per instance: west's warehouse refuses east's API and token.
    crossed = _materialize(
        tmp_path, {**env, "SIRO_WEST_URL": urls["siro_east"], "SIRO_WEST_TOKEN": ORGS["siro_east"][2]}, "siro_west")
    assert crossed.returncode != 0 and "org_east" in crossed.stdout + crossed.stderr
