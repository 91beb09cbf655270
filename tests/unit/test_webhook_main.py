"""`python -m siro_assets.webhooks`: its settings, and its refusals to start."""

from __future__ import annotations

from pathlib import Path

import pytest

from siro_assets.webhooks.__main__ import build_parser, default_inbox_path, main


def test_the_default_endpoint_and_port_are_the_documented_ones():
    args = build_parser().parse_args([])
    assert (args.host, args.port, args.endpoint) == ("127.0.0.1", 8788, None)
    args = build_parser().parse_args(["--endpoint", "west=SIRO_WEST_WEBHOOK_SECRET", "--endpoint", "siro=S"])
    assert args.endpoint == [("west", "SIRO_WEST_WEBHOOK_SECRET"), ("siro", "S")]


@pytest.mark.parametrize("spec", ["west", "=X", "west=", "a/b=X"])
def test_a_malformed_endpoint_is_a_usage_error(spec):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--endpoint", spec])


def test_the_inbox_follows_the_pipelines_warehouse_setting(monkeypatch, tmp_path):
    monkeypatch.setenv("SIRO_DUCKDB_PATH", str(tmp_path / "wh" / "org one.duckdb"))
    assert default_inbox_path() == tmp_path / "wh" / "org one.webhooks.sqlite"
    monkeypatch.delenv("SIRO_DUCKDB_PATH")
    monkeypatch.delenv("SIRO_SIMULATOR", raising=False)
    assert default_inbox_path() == Path("data/siro.webhooks.sqlite").resolve()


def test_without_its_secret_it_does_not_start_and_names_the_variable(monkeypatch, capsys):
    monkeypatch.delenv("SIRO_WEBHOOK_SECRET", raising=False)
    assert main([]) == 2
    assert "SIRO_WEBHOOK_SECRET" in capsys.readouterr().err


def test_an_unusable_secret_is_refused_without_being_printed(monkeypatch, capsys):
    monkeypatch.setenv("SIRO_WEST", "whsec_not*base64*at-all")
    assert main(["--endpoint", "west=SIRO_WEST"]) == 2
    err = capsys.readouterr().err
    assert "SIRO_WEST" in err and "not*base64" not in err


def _instances(monkeypatch, *instances):
    import siro_assets.webhooks.__main__ as cli

    monkeypatch.setattr(cli, "_instances", lambda project: list(instances))


def _instance(prefix, enabled, variable, tmp_path):
    from siro_assets.webhooks.location import InboxLocation
    from siro_assets.webhooks.project import InstanceEndpoint

    return InstanceEndpoint(prefix, enabled, variable, InboxLocation(sqlite_path=tmp_path / f"{prefix}.sqlite"))


GOOD = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="


def test_the_plan_serves_instances_with_a_secret_and_names_an_enabled_ones_missing_variable(monkeypatch, tmp_path):
    from siro_assets.webhooks.__main__ import StartupError, plan_endpoints

    _instances(monkeypatch, _instance("east", True, "EAST_S", tmp_path), _instance("off", False, "OFF_S", tmp_path))
    plan = plan_endpoints(build_parser().parse_args([]), {"EAST_S": GOOD})
    assert [(p.key_prefix, p.secret_env, p.inbox.sqlite_path.name) for p in plan] == [("east", "EAST_S", "east.sqlite")]
    with pytest.raises(StartupError, match="set EAST_S .* /webhooks/east"):
        plan_endpoints(build_parser().parse_args([]), {"OFF_S": GOOD})
    # --inbox puts every endpoint on one file; --endpoint serves only those named.
    args = build_parser().parse_args(["--endpoint", "off=OFF_S", "--inbox", str(tmp_path / "one.sqlite")])
    (only,) = plan_endpoints(args, {"OFF_S": GOOD})
    assert (only.key_prefix, only.inbox.sqlite_path) == ("off", tmp_path / "one.sqlite")
    with pytest.raises(StartupError, match="no SiroComponent instance has key_prefix 'west'"):
        plan_endpoints(build_parser().parse_args(["--endpoint", "west=W"]), {"W": GOOD})


def test_finding_the_endpoints_needs_no_token_and_imports_no_simulator_even_on_a_simulator_instance():
    import json
    import os
    import subprocess
    import sys

    code = ("import json, sys\n"
            "from siro_assets.webhooks.project import project_endpoints\n"
            "found = project_endpoints()\n"
            "print(json.dumps([[e.key_prefix, e.secret_env] for e in found]))\n"
            "print(json.dumps(sorted(m for m in sys.modules if 'simulator' in m)))\n")
    env = {**os.environ, "SIRO_SIMULATOR": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    env.pop("SIRO_API_TOKEN", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    endpoints, simulator_modules = (json.loads(line) for line in out.stdout.strip().splitlines()[-2:])
    assert endpoints == [["siro", "SIRO_WEBHOOK_SECRET"]] and simulator_modules == []
