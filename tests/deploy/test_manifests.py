"""deploy/: the kustomize overlays build, every Kubernetes object passes the Kubernetes
schemas (kubernetes-validate), KEDA's and the Prometheus Operator's (the
@kubernetes-models/keda and /prometheus-operator packages, generated from their CRDs), the
compose file passes the compose-spec schema (check-jsonschema's vendored copy), and the
manifests agree with the code (stage names, consumer groups, input topics, health paths,
ports, exit codes)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from caslie.status import STAGES

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy"
TOOLS = Path(os.environ.get("CASLIE_TOOLS", Path.home() / ".cache" / "caslie" / "tools"))
K8S_VERSION = "1.33.0"
MODEL_STAGES = ("captioner", "voter", "predictor")
#: What runs as its own process (``caslie run X``); ``router.waiting`` runs inside the router.
PROCESSES = ("router", *MODEL_STAGES)
#: The stages whose pods write transactionally under exactly-once: StatefulSets.
TRANSACTIONAL = (*PROCESSES, "accumulator")
NPM = TOOLS / "npm" / "node_modules"
CRD_PACKAGES = {
    "keda.sh/v1alpha1": NPM / "@kubernetes-models" / "keda",
    "monitoring.coreos.com/v1": NPM / "@kubernetes-models" / "prometheus-operator",
}


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(TOOLS / "bin")) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing: scripts/env.sh installs it into {TOOLS}/bin")
    return found


def build(overlay: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [_tool("kustomize"), "build", str(DEPLOY / "k8s" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=True,
    )
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.fixture(scope="module", params=["cpu", "gpu"])
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    return request.param, build(request.param)


def _by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def validate_crds(api_version: str, docs: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    """tests/support/validate_crds.mjs on ``docs`` with the models of ``api_version``."""
    models = CRD_PACKAGES[api_version]
    if not models.is_dir():
        pytest.fail(f"{models} is missing: scripts/env.sh installs it")
    script = ROOT / "tests" / "support" / "validate_crds.mjs"
    return subprocess.run(
        [_tool("node"), str(script), str(models), api_version],
        input=json.dumps(docs),
        capture_output=True,
        text=True,
    )


def test_core_objects_pass_the_kubernetes_schemas(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    _, docs = overlay
    core = [d for d in docs if d["apiVersion"] not in CRD_PACKAGES]
    assert len(core) >= 14
    for doc in core:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_keda_objects_pass_the_keda_schemas(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = overlay
    keda = [d for d in docs if d["apiVersion"].startswith("keda.sh/")]
    assert {d["kind"] for d in keda} == {"ScaledObject", "TriggerAuthentication"}
    out = validate_crds("keda.sh/v1alpha1", keda)
    assert out.returncode == 0, out.stdout + out.stderr


def test_prometheus_operator_objects_pass_their_schemas_and_scrape_every_stage(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    """The PodMonitor validates, selects every stage's pods by a label they carry, scrapes
    the port they name, and labels the targets job="caslie" as the alerts expect."""
    _, docs = overlay
    monitoring = [d for d in docs if d["apiVersion"] == "monitoring.coreos.com/v1"]
    assert {d["kind"] for d in monitoring} == {"PodMonitor"}
    out = validate_crds("monitoring.coreos.com/v1", monitoring)
    assert out.returncode == 0, out.stdout + out.stderr
    [monitor] = monitoring
    selector = monitor["spec"]["selector"]["matchLabels"]
    [endpoint] = monitor["spec"]["podMetricsEndpoints"]
    for stage in TRANSACTIONAL:
        template = _by_kind(docs, "StatefulSet")[f"caslie-{stage}"]["spec"]["template"]
        assert selector.items() <= template["metadata"]["labels"].items(), stage
        ports = {p["name"] for p in template["spec"]["containers"][0]["ports"]}
        assert endpoint["port"] in ports
    assert {"targetLabel": "job", "replacement": "caslie"} in endpoint["relabelings"]
    alerts = (DEPLOY / "prometheus" / "alerts.yml").read_text()
    assert 'up{job="caslie"}' in alerts


def test_a_broken_manifest_is_refused() -> None:
    """The validators are not rubber stamps."""
    docs = build("cpu")
    voter = _by_kind(docs, "StatefulSet")["caslie-voter"]
    voter["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(voter, K8S_VERSION, strict=True)
    scaled = next(d for d in docs if d["kind"] == "ScaledObject")
    del scaled["spec"]["scaleTargetRef"]
    out = validate_crds("keda.sh/v1alpha1", [scaled])
    assert out.returncode == 1 and "scaleTargetRef" in out.stdout
    monitor = _by_kind(docs, "PodMonitor")["caslie"]
    monitor["spec"]["podMetricsEndpoints"][0]["interval"] = 15
    out = validate_crds("monitoring.coreos.com/v1", [monitor])
    assert out.returncode == 1 and "interval" in out.stdout


def test_every_stage_is_deployed_probed_budgeted_and_scaled_on_its_own_lag(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    name, docs = overlay
    config = _by_kind(docs, "ConfigMap")["caslie-config"]["data"]
    prefix = config["CASLIE_TOPIC_PREFIX"]
    deployments = _by_kind(docs, "StatefulSet")
    budgets = _by_kind(docs, "PodDisruptionBudget")
    scaled = _by_kind(docs, "ScaledObject")
    for stage in PROCESSES:
        group_suffix, topics = STAGES[stage]
        deployment = deployments[f"caslie-{stage}"]
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert container["args"] == ["run", stage]
        assert container["image"].endswith(f":{name}")
        port = int(config["CASLIE_METRICS_PORT"])
        assert container["ports"][0]["containerPort"] == port
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert pod["securityContext"]["runAsNonRoot"] is True
        refs = {next(iter(e.values()))["name"] for e in container["envFrom"]}
        assert {"caslie-config", "caslie-secrets"} <= refs
        labels = deployment["spec"]["selector"]["matchLabels"]
        assert budgets[f"caslie-{stage}"]["spec"]["selector"]["matchLabels"] == labels
        trigger = scaled[f"caslie-{stage}"]["spec"]["triggers"][0]
        assert trigger["type"] == "kafka"
        assert trigger["metadata"]["consumerGroup"] == f"{prefix}{group_suffix}"
        assert trigger["metadata"]["topic"] in {f"{prefix}{t}" for t in topics}
        gpus = container["resources"]["limits"].get("nvidia.com/gpu")
        assert gpus == ("1" if name == "gpu" and stage in MODEL_STAGES else None)


def test_the_retraining_cronjob_never_overlaps(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    _, docs = overlay
    job = _by_kind(docs, "CronJob")["caslie-retrain"]
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    spec = job["spec"]["jobTemplate"]["spec"]
    container = spec["template"]["spec"]["containers"][0]
    assert container["command"] == ["/bin/sh", "-c"]
    [script] = container["args"]
    assert script.startswith("caslie retrain ")


def test_the_accumulator_runs_beside_the_pipeline_with_its_state_folder(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    _, docs = overlay
    deployment = _by_kind(docs, "StatefulSet")["caslie-accumulator"]
    assert deployment["spec"]["replicas"] == 1
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["args"] == ["run", "accumulator"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert env["CASLIE_TRAINING__STATE_DIR"] in mounts
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    compose = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())
    assert compose["services"]["accumulator"]["command"] == ["run", "accumulator"]


def test_the_retraining_job_reads_the_exit_codes_and_keeps_checkpoints(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    """Kept the incumbent (6) ends the Job as a success; no data (7) and a usage, setting or
    config-file mistake (2, 9, 10) fail it without a retry; a retry resumes from checkpoints
    on a volume."""
    from caslie.exit_codes import ExitCode

    _, docs = overlay
    spec = _by_kind(docs, "CronJob")["caslie-retrain"]["spec"]["jobTemplate"]["spec"]
    container = spec["template"]["spec"]["containers"][0]
    [script] = container["args"]
    for code, expected in ((ExitCode.KEPT_INCUMBENT, 0), (0, 0), (7, 7), (70, 70)):
        fake = script.replace("caslie retrain --name generalist", f"sh -c 'exit {int(code)}'")
        assert subprocess.run(["/bin/sh", "-c", fake]).returncode == expected
    [rule] = spec["podFailurePolicy"]["rules"]
    assert rule["action"] == "FailJob"
    assert set(rule["onExitCodes"]["values"]) == {
        ExitCode.USAGE,
        ExitCode.NO_TRAINING_DATA,
        ExitCode.INVALID_SETTING,
        ExitCode.CONFIG_FILE,
    }
    env = {e["name"]: e.get("value") for e in container["env"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["template"]["spec"]["volumes"]}
    checkpoints = Path(env["CASLIE_TRAINING__CHECKPOINT_DIR"])
    volume = volumes[mounts[str(checkpoints.parent)]]
    claim = volume["persistentVolumeClaim"]["claimName"]
    assert claim in _by_kind(docs, "PersistentVolumeClaim")


def test_stage_input_topics_match_the_code() -> None:
    from streams.router.stages import RouterStage, WaitingStage
    from workers.captioner import CaptionerStage
    from workers.predictor import PredictorStage
    from workers.voter import VoterStage

    for stage in (RouterStage, WaitingStage, CaptionerStage, VoterStage, PredictorStage):
        assert STAGES[stage.name] == (stage.name, stage.input_topics)
    assert set(STAGES) == {*PROCESSES, "router.waiting"}


def test_compose_file_passes_the_compose_spec() -> None:
    out = subprocess.run(
        [
            _tool("check-jsonschema"),
            "--builtin-schema",
            "vendor.compose-spec",
            str(DEPLOY / "compose" / "compose.yaml"),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    compose = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())
    services = compose["services"]
    for stage in PROCESSES:
        assert services[stage]["command"] == ["run", stage]
    assert {"kafka", "minio", "prometheus", "grafana"} <= services.keys()
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = scrape["scrape_configs"][0]["static_configs"][0]["targets"]
    assert sorted(t.split(":")[0] for t in targets) == sorted(PROCESSES)


def test_a_broken_compose_file_is_refused(tmp_path: Path) -> None:
    compose = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())
    compose["services"]["router"]["restart"] = ["always"]
    broken = tmp_path / "compose.yaml"
    broken.write_text(yaml.safe_dump(compose))
    out = subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(broken)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1


def test_the_gpu_voter_runs_the_papers_five_judges_from_the_shipped_preset() -> None:
    docs = build("gpu")
    voter = _by_kind(docs, "StatefulSet")["caslie-voter"]["spec"]["template"]["spec"]
    container = voter["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    config = Path(env["CASLIE_CONFIG"])
    [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == str(config.parent)]
    [volume] = [v for v in voter["volumes"] if v["name"] == mount["name"]]
    configmap = _by_kind(docs, "ConfigMap")[volume["configMap"]["name"]]
    assert configmap["data"][config.name] == (DEPLOY / "config" / config.name).read_text()
    cpu_voter = _by_kind(build("cpu"), "StatefulSet")["caslie-voter"]
    assert "CASLIE_CONFIG" not in {
        e["name"] for e in cpu_voter["spec"]["template"]["spec"]["containers"][0]["env"]
    }


def test_the_gpu_predictor_serves_on_vllm_and_retraining_trains_for_it() -> None:
    docs = build("gpu")
    predictor = _by_kind(docs, "StatefulSet")["caslie-predictor"]["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in predictor["containers"][0]["env"]}
    job = _by_kind(docs, "CronJob")["caslie-retrain"]["spec"]["jobTemplate"]["spec"]
    job_env = {e["name"]: e.get("value") for e in job["template"]["spec"]["containers"][0]["env"]}
    assert env["CASLIE_PREDICTOR__BACKEND"] == job_env["CASLIE_PREDICTOR__BACKEND"] == "vllm"
    assert env["CASLIE_PREDICTOR__MODEL"] == job_env["CASLIE_PREDICTOR__MODEL"]
    cpu = _by_kind(build("cpu"), "StatefulSet")["caslie-predictor"]["spec"]["template"]["spec"]
    assert "CASLIE_PREDICTOR__BACKEND" not in {e["name"] for e in cpu["containers"][0]["env"]}


@pytest.mark.parametrize("count", [3, 5, 7])
def test_judge_presets_are_odd_sets_of_llm_folders(count: int) -> None:
    from streams.config import load_settings

    judges = load_settings(DEPLOY / "config" / f"judges-{count}.toml").voter.judges
    assert len(judges) == count == len(set(judges))
    assert all(j.startswith("/models/") for j in judges)
    five = load_settings(DEPLOY / "config" / "judges-5.toml").voter.judges
    assert [Path(j).name for j in five] == [
        "Llama-3.2-3B-Instruct",
        "Llama-3.1-8B-Instruct",
        "Llama-3.2-11B-Vision-Instruct",
        "Mistral-7B-Instruct-v0.3",
        "Phi-3.5-mini-Instruct",
    ]


def test_transactional_stages_are_statefulsets_whose_pod_name_is_the_instance_id(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    """A replacement pod keeps its predecessor's name, hence its transactional id: it fences
    the dead pod's open transaction at once. KEDA scales the StatefulSet it names, the PDB
    selects its pods, and its governing Service is the headless metrics Service."""
    _, docs = overlay
    sets = _by_kind(docs, "StatefulSet")
    assert not _by_kind(docs, "Deployment")
    services = _by_kind(docs, "Service")
    scaled = _by_kind(docs, "ScaledObject")
    budgets = _by_kind(docs, "PodDisruptionBudget")
    for stage in TRANSACTIONAL:
        spec = sets[f"caslie-{stage}"]["spec"]
        container = spec["template"]["spec"]["containers"][0]
        [instance] = [e for e in container["env"] if e["name"] == "CASLIE_INSTANCE_ID"]
        assert instance["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
        assert spec["podManagementPolicy"] == "Parallel"
        governing = services[spec["serviceName"]]["spec"]
        assert governing["clusterIP"] == "None"
        assert governing["selector"].items() <= spec["template"]["metadata"]["labels"].items()
        if stage in PROCESSES:  # the accumulator runs one replica: no autoscaling, no budget
            target = scaled[f"caslie-{stage}"]["spec"]["scaleTargetRef"]
            assert target == {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "name": f"caslie-{stage}",
            }
            labels = budgets[f"caslie-{stage}"]["spec"]["selector"]["matchLabels"]
            assert labels.items() <= spec["template"]["metadata"]["labels"].items()


def test_gpu_pods_write_their_caches_to_volumes_and_get_a_memory_backed_shm() -> None:
    """The root filesystem is read-only: every cache folder of the GPU libraries (vLLM,
    Hugging Face, Triton, ...) lies on a writable volume, and /dev/shm is in memory."""
    docs = build("gpu")
    [runtime] = [c for n, c in _by_kind(docs, "ConfigMap").items() if n.startswith("caslie-gpu")]
    folders = runtime["data"]
    assert {"VLLM_CACHE_ROOT", "HF_HOME", "TRITON_CACHE_DIR", "XDG_CACHE_HOME"} <= folders.keys()
    sets = _by_kind(docs, "StatefulSet")
    job = _by_kind(docs, "CronJob")["caslie-retrain"]["spec"]["jobTemplate"]["spec"]
    pods = [sets[f"caslie-{s}"]["spec"]["template"]["spec"] for s in MODEL_STAGES]
    for pod in [*pods, job["template"]["spec"]]:
        [container] = pod["containers"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        refs = {e["configMapRef"]["name"] for e in container["envFrom"] if "configMapRef" in e}
        assert runtime["metadata"]["name"] in refs
        volumes = {v["name"]: v for v in pod["volumes"]}
        writable = {
            m["mountPath"]: volumes[m["name"]]
            for m in container["volumeMounts"]
            if not m.get("readOnly")
        }
        for folder in folders.values():
            assert any(Path(folder).is_relative_to(mount) for mount in writable), folder
        assert writable["/dev/shm"]["emptyDir"]["medium"] == "Memory"
    guide = (ROOT / "docs" / "operations.md").read_text()
    assert "nvidia.com/gpu" in guide and "device plugin" in guide


def test_compose_publishes_kafka_to_the_host_beside_the_internal_listener() -> None:
    """README's shell pipes reach the compose broker: an EXTERNAL listener advertised as
    localhost on a port published (to the host only), the services keep kafka:9092."""
    compose = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())
    kafka = compose["services"]["kafka"]
    env = kafka["environment"]
    listeners = dict(item.split("://") for item in env["KAFKA_LISTENERS"].split(","))
    advertised = dict(item.split("://") for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    protocols = dict(
        item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    assert advertised["PLAINTEXT"] == "kafka:9092"
    host, port = advertised["EXTERNAL"].split(":")
    assert host == "localhost" and listeners["EXTERNAL"] == f":{port}"
    assert protocols["EXTERNAL"] == "PLAINTEXT"
    assert f"127.0.0.1:{port}:{port}" in kafka["ports"]
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] == "PLAINTEXT"
    assert f"localhost:{port}" in (ROOT / "README.md").read_text()
    bootstrap = dict(
        line.split("=", 1)
        for line in (DEPLOY / "compose" / "caslie.env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert bootstrap["CASLIE_BOOTSTRAP_SERVERS"] == advertised["PLAINTEXT"]
