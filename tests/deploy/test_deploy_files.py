"""The deployment files parse, load with Dagster's own schema, and agree with each other.

Docker, Kubernetes and Helm cannot run here; these tests hold the files to what the
running system relies on (one writer, secrets only where needed, the same limits in
every place that states them). The PostgreSQL test runs the dagster.yaml for real.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from dagster._core.instance.config import dagster_instance_config

from siro_assets.warehouse.lake import CREDENTIAL_CHAIN_EXTENSIONS, LAKE_EXTENSIONS, S3_EXTENSIONS

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
    assert set(services) == {"postgres", "init", "code-server", "webserver", "daemon", "webhooks",
                             "minio", "lake-catalog", "lake-bucket"}
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


# --- Lake mode (issue 19): DuckLake, a PostgreSQL catalog and object storage -----------------

LAKE_SECRET_VARS = ("SIRO_DUCKLAKE_CATALOG", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


def helm_merge(base, overlay):
    """Values files as `helm -f base -f overlay` combines them: maps merge key by key, a
    null removes the key, anything else (lists included) replaces."""
    if not isinstance(base, dict) or not isinstance(overlay, dict):
        return overlay
    merged = dict(base)
    for key, value in overlay.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = helm_merge(base.get(key), value)
    return merged


@pytest.fixture(scope="module")
def helm_lake(helm) -> dict:
    return helm_merge(helm, _load(DEPLOY / "helm" / "values-lake.yaml"))


def _env_by_name(container: dict) -> dict[str, dict]:
    return {item["name"]: item for item in container["env"]}


def test_helm_merge_follows_helms_rules():
    base = {"a": {"b": 1, "c": [1, 2], "d": {"e": 1}}, "f": 1}
    assert helm_merge(base, {"a": {"c": [3], "d": None}, "g": 2}) == {"a": {"b": 1, "c": [3]}, "f": 1, "g": 2}


def test_helm_lake_mode_run_pods_fan_out_with_no_volume_and_no_node_pin(helm_lake):
    launcher = helm_lake["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    config = launcher["config"]["k8sRunLauncher"]
    assert not config.get("volumes") and not config.get("volumeMounts")
    pod = config["runK8sConfig"]["podSpecConfig"]
    assert "nodeSelector" not in pod and "affinity" not in pod
    assert "siro-warehouse" not in (DEPLOY / "helm" / "values-lake.yaml").read_text().replace(
        "warehouse-pvc.yaml", "")
    # Spread over nodes (a preference, so a one-node cluster still schedules).
    (spread,) = pod["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname" and spread["whenUnsatisfiable"] == "ScheduleAnyway"
    # The same security context as file mode.
    assert pod["securityContext"] == _load(DEPLOY / "helm" / "values.yaml")["runLauncher"]["config"][
        "k8sRunLauncher"]["runK8sConfig"]["podSpecConfig"]["securityContext"]


def test_helm_lake_mode_reads_the_catalog_and_s3_credentials_from_secrets(helm, helm_lake):
    from siro_assets.warehouse.backend import lake_settings_from_env
    from siro_assets.warehouse.lake import CATALOG_ENV_VAR, DATA_PATH_ENV_VAR, WAREHOUSE_ENV_VAR

    (deployment,) = helm_lake["dagster-user-deployments"]["deployments"]
    (file_mode,) = helm["dagster-user-deployments"]["deployments"]
    # Only the environment differs from file mode (lists replace whole in Helm, so the
    # overlay repeats the entry: nothing else may drift).
    assert {k: v for k, v in deployment.items() if k != "env"} == {k: v for k, v in file_mode.items() if k != "env"}
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True  # run pods get the same env
    env = _env_by_name(deployment)
    assert env[WAREHOUSE_ENV_VAR]["value"] == "ducklake"
    for name in (CATALOG_ENV_VAR, DATA_PATH_ENV_VAR, *LAKE_SECRET_VARS, "AWS_REGION"):
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref["key"] == name and ref["name"] in {"siro-lake", "siro-lake-s3"}, name
        assert "value" not in env[name]
    # Keys are optional (an IAM role gives the AWS credential chain instead); the region is not.
    for optional in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert env[optional]["valueFrom"]["secretKeyRef"].get("optional") is True, optional
    assert not env["AWS_REGION"]["valueFrom"]["secretKeyRef"].get("optional")
    # Without a volume the local path holds only this pod's run stages (pod scratch).
    assert not env["SIRO_DUCKDB_PATH"]["value"].startswith("/data/")
    # File mode's other settings are kept.
    file_env = {item["name"]: item for item in file_mode["env"]}
    assert {n: file_env[n] for n in file_env if n != "SIRO_DUCKDB_PATH"}.items() <= env.items()
    # What the pods would see resolves to a lake on S3.
    resolved = {name: item.get("value", f"<{name}>") for name, item in env.items()}
    resolved[DATA_PATH_ENV_VAR] = "s3://siro-lake/warehouse/"
    lake = lake_settings_from_env(resolved)
    assert lake is not None and lake.on_s3 and lake.catalog == f"<{CATALOG_ENV_VAR}>"
    assert lake.aws_secret_access_key == "<AWS_SECRET_ACCESS_KEY>"
    # The component reads the DSN from the variable the secret fills.
    defs = _load(ROOT / "siro_assets" / "defs" / "siro" / "defs.yaml")
    assert defs["attributes"]["warehouse"]["catalog_env"] == CATALOG_ENV_VAR


def test_helm_lake_mode_keeps_derived_writes_in_turn_and_documents_its_secrets(helm, helm_lake):
    from siro_assets.pipeline.resources import WAREHOUSE_POOL

    text = (DEPLOY / "helm" / "values-lake.yaml").read_text()
    # Runs fan out (fetching, raw swaps); the pooled steps (derived rebuilds) still take
    # turns: on a lake, concurrent rebuilds of one table only re-run (bench/lake.py).
    assert helm_lake["concurrency"] == helm["concurrency"]
    assert helm_lake["concurrency"]["pools"]["defaultLimit"] == 1
    assert helm_lake["concurrency"]["runs"]["maxConcurrentRuns"] > 1
    assert f"concurrency set {WAREHOUSE_POOL} 1" in text
    assert "-f deploy/helm/values.yaml -f deploy/helm/values-lake.yaml" in text
    for secret in ("siro-lake", "siro-lake-s3"):
        assert f"kubectl create secret generic {secret} " in text
    assert "SIRO_DUCKLAKE_CATALOG=" in text and "AWS_SECRET_ACCESS_KEY=" in text


def test_compose_lake_profile_runs_an_s3_store_and_the_catalog_database(compose):
    services = compose["services"]
    lake_services = {name for name, svc in services.items() if "lake" in svc.get("profiles", [])}
    assert lake_services == {"minio", "lake-catalog", "lake-bucket"}
    minio = services["minio"]
    # Credentials from deploy/.env, the same pair the lake's S3 client uses; MinIO's
    # built-in default pair must never be what it starts with.
    assert minio["environment"] == {"MINIO_ROOT_USER": "${AWS_ACCESS_KEY_ID:-}",
                                    "MINIO_ROOT_PASSWORD": "${AWS_SECRET_ACCESS_KEY:-}"}
    assert 'test -n "$$MINIO_ROOT_PASSWORD"' in " ".join(minio["entrypoint"] + minio["command"])
    assert "ports" not in minio, "the object store is reached by the code server only"
    assert any(v.startswith("lake-data:") for v in minio["volumes"]) and "lake-data" in compose["volumes"]
    bucket = " ".join(services["lake-bucket"]["entrypoint"])
    assert "mc mb --ignore-existing" in bucket and "${SIRO_LAKE_BUCKET:-siro-lake}" in bucket
    assert services["lake-bucket"]["depends_on"]["minio"]["condition"] == "service_healthy"
    catalog = " ".join(services["lake-catalog"]["command"])
    assert "createdb" in catalog and "${SIRO_LAKE_DATABASE:-siro_lake}" in catalog
    assert services["lake-catalog"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    # The code server waits for both when the profile is on, and ignores them when it is off.
    deps = services["code-server"]["depends_on"]
    for name in ("lake-catalog", "lake-bucket"):
        assert deps[name] == {"condition": "service_completed_successfully", "required": False}
    assert deps["init"]["condition"] == "service_completed_successfully"


def test_compose_lake_settings_reach_the_code_server_only_and_resolve_to_the_profiles_services(compose):
    from siro_assets.warehouse.backend import lake_settings_from_env
    from siro_assets.warehouse.lake import CATALOG_ENV_VAR, DATA_PATH_ENV_VAR

    services = compose["services"]
    env = services["code-server"]["environment"]
    assert "dbname=${SIRO_LAKE_DATABASE:-siro_lake}" in env[CATALOG_ENV_VAR]
    assert "host=postgres" in env[CATALOG_ENV_VAR] and "password=${DAGSTER_POSTGRES_PASSWORD}" in env[CATALOG_ENV_VAR]
    assert env[DATA_PATH_ENV_VAR] == "s3://${SIRO_LAKE_BUCKET:-siro-lake}/warehouse/"
    assert env["AWS_ENDPOINT_URL"] == "${AWS_ENDPOINT_URL-http://minio:9000}"
    for name in ("webserver", "daemon", "webhooks"):
        for secret in LAKE_SECRET_VARS:
            assert services[name]["environment"][secret] == "", (name, secret)
    # deploy/.env.example's lake block (commented out: file mode is the default), with
    # compose's defaults filled in, is a lake on the profile's MinIO.
    example = _env_example()
    assert example["SIRO_WAREHOUSE"] == "ducklake"
    resolved = {**example, CATALOG_ENV_VAR: "host=postgres port=5432 dbname=siro_lake user=dagster password=x",
                DATA_PATH_ENV_VAR: "s3://siro-lake/warehouse/", "AWS_ENDPOINT_URL": "http://minio:9000"}
    lake = lake_settings_from_env(resolved)
    assert lake.on_s3 and lake.aws_access_key_id == example["AWS_ACCESS_KEY_ID"]
    assert len(example["AWS_SECRET_ACCESS_KEY"]) >= 8, "MinIO refuses a root password under 8 characters"
    assert "COMPOSE_PROFILES=lake" in (DEPLOY / ".env.example").read_text()


def test_the_image_carries_the_lake_extensions():
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"pip install [\'\"]?\.\[ducklake\][\'\"]?", text), \
        "lake mode LOADs the extensions from the duckdb-extension-* wheels (no network at run time)"
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["ducklake"]
    for name in LAKE_EXTENSIONS + S3_EXTENSIONS + CREDENTIAL_CHAIN_EXTENSIONS:
        wheel = f"duckdb-extension-{name.replace('_', '-')}"
        assert any(pin.startswith(wheel + "==") for pin in extra), f"the ducklake extra lacks {wheel}"
