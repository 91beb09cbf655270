"""The deployment files parse, load with Dagster's own schema, and agree with each other.

Docker, Kubernetes and Helm cannot run here; these tests hold the files to what the
running system relies on (one writer, secrets only where needed, the same limits in
every place that states them). The PostgreSQL test runs the dagster.yaml for real.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from dagster._core.instance.config import dagster_instance_config

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
POSTGRES_VARS = {f"DAGSTER_POSTGRES_{name}" for name in ("HOST", "PORT", "USER", "PASSWORD", "DB")}


def _load(path: Path):
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def prod_config() -> dict:
    config, _ = dagster_instance_config(str(DEPLOY), "dagster.yaml")
    return config


@pytest.fixture(scope="module")
def compose() -> dict:
    return _load(DEPLOY / "docker-compose.yml")


@pytest.fixture(scope="module")
def helm() -> dict:
    return _load(DEPLOY / "helm" / "values.yaml")


def _env_example() -> dict[str, str]:
    pairs = {}
    for line in (DEPLOY / ".env.example").read_text().splitlines():
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]+)=(.*)$", line)
        if match:
            pairs[match.group(1)] = match.group(2)
    return pairs


def test_production_instance_config_passes_dagsters_schema(prod_config):
    db = prod_config["storage"]["postgres"]["postgres_db"]
    assert {value["env"] for value in db.values()} == POSTGRES_VARS
    assert prod_config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert prod_config["run_monitoring"]["enabled"] is True
    assert prod_config["run_retries"]["enabled"] is True and prod_config["run_retries"]["max_retries"] >= 1
    assert prod_config["retention"]["sensor"]["purge_after_days"]["skipped"] > 0


def test_one_duckdb_writer_in_every_configuration(prod_config, helm):
    """Pools at op granularity with limit 1 (the writer slot is held only while writing), in the local, production and Helm configs."""
    local, _ = dagster_instance_config(str(ROOT), "dagster.yaml")
    assert prod_config["concurrency"]["pools"] == local["concurrency"]["pools"] == {
        "granularity": "op", "default_limit": 1}
    assert helm["concurrency"]["pools"] == {"granularity": "op", "defaultLimit": 1}
    assert prod_config["run_retries"] == {**local["run_retries"], "retry_on_asset_or_op_failure": True}
    daemon = helm["dagsterDaemon"]
    assert daemon["runRetries"]["maxRetries"] == prod_config["run_retries"]["max_retries"]
    assert daemon["runMonitoring"]["enabled"] is True


def test_the_pool_name_is_the_one_the_assets_use(compose):
    from siro_assets.pipeline.resources import WAREHOUSE_POOL

    init = " ".join(compose["services"]["init"]["command"])
    assert f"concurrency set {WAREHOUSE_POOL} 1" in init
    helm_text = (DEPLOY / "helm" / "values.yaml").read_text()
    assert f"concurrency set {WAREHOUSE_POOL} 1" in helm_text


def test_compose_has_the_services_and_only_runs_mount_the_warehouse(compose):
    services = compose["services"]
    assert set(services) == {"postgres", "init", "code-server", "webserver", "daemon", "webhooks"}
    mounts = {name: [v.split(":")[0] for v in svc.get("volumes", [])] for name, svc in services.items()}
    # The receiver mounts it for its inbox only (it never opens the DuckDB file).
    assert [name for name, volumes in mounts.items() if "warehouse" in volumes] == ["code-server", "webhooks"]
    # The Siro token reaches only the code server (and the runs it starts).
    for name in ("webserver", "daemon"):
        assert services[name]["environment"]["SIRO_API_TOKEN"] == ""
    assert "code-server" in " ".join(services["code-server"]["command"])
    workspace = _load(DEPLOY / "workspace.yaml")["load_from"][0]["grpc_server"]
    assert workspace["host"] == "code-server"
    assert str(workspace["port"]) in services["code-server"]["command"]


def test_compose_webhooks_service_serves_the_receiver_with_its_secret_and_no_token(compose):
    from siro_assets.webhooks.__main__ import DEFAULT_SECRET_ENV_VAR, build_parser

    services = compose["services"]
    hook = services["webhooks"]
    assert hook["image"] == services["code-server"]["image"]
    command = hook["command"]
    assert command[:3] == ["python", "-m", "siro_assets.webhooks"]
    args = build_parser().parse_args(command[3:])
    assert (args.host, args.port) == ("0.0.0.0", 8788)
    # The secret comes from deploy/.env, required; the API token is blanked over env_file.
    assert hook["environment"][DEFAULT_SECRET_ENV_VAR] == "${SIRO_WEBHOOK_SECRET:-}"
    assert hook["profiles"] == ["webhooks"], "a deployment without webhooks must not need the secret"
    assert hook["environment"]["SIRO_API_TOKEN"] == ""
    assert DEFAULT_SECRET_ENV_VAR in _env_example()
    # Same volume and mount point as the runs, so the inbox beside the warehouse is shared.
    assert "warehouse:/data" in hook["volumes"] and "warehouse:/data" in services["code-server"]["volumes"]
    health = " ".join(hook["healthcheck"]["test"])
    assert "http://127.0.0.1:8788/healthz" in health
    assert hook["ports"] == ["127.0.0.1:8788:8788"]
    # Only the receiver holds the signing secret.
    for name in ("code-server", "webserver", "daemon"):
        assert services[name]["environment"][DEFAULT_SECRET_ENV_VAR] == ""
    # The PostgreSQL inbox's DSN (optional, from deploy/.env) reaches only the receiver and
    # the code server, where the webhook sensor runs.
    assert "SIRO_WEBHOOK_INBOX_DSN" in _env_example()
    for name in ("webserver", "daemon"):
        assert services[name]["environment"]["SIRO_WEBHOOK_INBOX_DSN"] == ""
    for name in ("code-server", "webhooks"):
        assert "SIRO_WEBHOOK_INBOX_DSN" not in services[name]["environment"]


def test_kubernetes_receiver_has_the_secret_ref_probe_and_no_token(helm):
    from siro_assets.webhooks.__main__ import DEFAULT_SECRET_ENV_VAR, build_parser

    docs = {doc["kind"]: doc for doc in yaml.safe_load_all((DEPLOY / "helm" / "webhooks.yaml").read_text())}
    assert set(docs) == {"Deployment", "Service"}
    deployment = docs["Deployment"]
    # The PostgreSQL inbox admits several writers: two pods, rolled one at a time.
    assert deployment["spec"]["replicas"] == 2 and deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"][:3] == ["python", "-m", "siro_assets.webhooks"]
    args = build_parser().parse_args(container["command"][3:])
    assert (args.host, args.port) == ("0.0.0.0", 8788)
    env = {item["name"]: item for item in container["env"]}
    assert env[DEFAULT_SECRET_ENV_VAR]["valueFrom"]["secretKeyRef"] == {"name": "siro-webhook", "key": DEFAULT_SECRET_ENV_VAR}
    # The inbox is in PostgreSQL: its DSN from a Secret the code server gets too, and no
    # volume on either side.
    assert env["SIRO_WEBHOOK_INBOX_DSN"]["valueFrom"]["secretKeyRef"] == {
        "name": "siro-webhook-inbox", "key": "SIRO_WEBHOOK_INBOX_DSN"}
    assert "volumes" not in pod and "volumeMounts" not in container and "nodeSelector" not in pod
    (code_server,) = helm["dagster-user-deployments"]["deployments"]
    assert {"name": "siro-webhook-inbox"} in code_server["envSecrets"]
    # No API token: neither the variable nor the code server's `siro-api` secret.
    assert "SIRO_API_TOKEN" not in env and "envFrom" not in container
    assert "siro-api" not in (DEPLOY / "helm" / "webhooks.yaml").read_text()
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"http": 8788}
    service = docs["Service"]
    assert service["spec"]["selector"] == deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert "kubectl apply -f deploy/helm/webhooks.yaml" in (DEPLOY / "helm" / "values.yaml").read_text()


def test_every_variable_the_deployment_reads_is_in_env_example(compose):
    example = _env_example()
    referenced = set(re.findall(r"\$\{([A-Z0-9_]+)", (DEPLOY / "docker-compose.yml").read_text()))
    referenced |= POSTGRES_VARS | {"SIRO_API_TOKEN", "SIRO_DUCKDB_PATH"}
    assert referenced <= set(example)
    # DuckDB names a file's catalog after its stem: `siro.duckdb` would shadow schema `siro`.
    assert Path(example["SIRO_DUCKDB_PATH"]).stem != "siro"


def test_dockerfile_is_non_root_and_keeps_pyproject_beside_the_package():
    text = (DEPLOY / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.M)
    assert users and users[-1] not in {"root", "0"}
    assert re.search(r"pip install .*-e \.", text), "editable install keeps pyproject.toml beside the code"
    assert "COPY deploy/dagster.yaml" in text
    assert "siro_assets.definitions" in text


def test_helm_values_mount_the_warehouse_on_run_pods_only(helm):
    (deployment,) = helm["dagster-user-deployments"]["deployments"]
    assert "volumes" not in deployment and "volumeMounts" not in deployment
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", "siro_assets.definitions"]
    launcher = helm["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    config = launcher["config"]["k8sRunLauncher"]
    assert config["volumes"][0]["persistentVolumeClaim"]["claimName"] == "siro-warehouse"
    pvc = _load(DEPLOY / "helm" / "warehouse-pvc.yaml")
    assert pvc["metadata"]["name"] == "siro-warehouse"
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert helm["postgresql"]["enabled"] is False


def test_everything_the_dockerfile_copies_is_in_its_build_context():
    allowed = {line[1:].rstrip("/") for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
               if line.startswith("!")}
    copied = set()
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            copied.update(part.rstrip("/") for part in line.split()[1:-1])
    assert copied and copied <= allowed
    assert all((ROOT / path).exists() for path in copied)
