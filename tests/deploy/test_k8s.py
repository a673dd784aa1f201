"""deploy/k8s/base, checked offline against the code, the settings and the benchmark (no cluster runs here).

Built-in objects are validated with kubernetes-validate's bundled schemas
(strict: an unknown field fails); the CRDs (KEDA ScaledObject, Prometheus
Operator ServiceMonitor) have no schema there and are checked field by field.
Then names, ports, probe paths, environment and sizes against what the
worker really serves, reads and measured. The overlays: test_k8s_overlays.py.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import tomllib
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import faust
import kubernetes_validate
import pytest
import typer
import yaml
from kustomize import build, containers_of
from prometheus_client import CollectorRegistry

from stream_app.cli.main import cli
from stream_app.settings import Settings, load_settings
from stream_app.worker.app import TABLES, faust_config
from stream_app.worker.health import Health, wsgi_app
from stream_app.worker.runner import all_topics

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
K8S_VERSION = "1.30"
CRDS = {"ScaledObject": "keda.sh/v1alpha1", "ServiceMonitor": "monitoring.coreos.com/v1"}


def bench(measure: str) -> float:
    """A figure of docs/BENCHMARKS.md's worker section (the table `trendcast bench --part worker` writes)."""
    text = (ROOT / "docs" / "BENCHMARKS.md").read_text()
    section = text.split("<!-- bench:worker -->")[1].split("<!-- /bench:worker -->")[0]
    m = re.search(rf"^\| {re.escape(measure)} \| ([\d,.]+) \|$", section, re.M)
    assert m, f"docs/BENCHMARKS.md has no worker figure {measure!r}"
    return float(m.group(1).replace(",", ""))


def mebibytes(quantity: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|k|M|G)?", str(quantity))
    assert m, quantity
    scale = {None: 1, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "k": 1e3, "M": 1e6, "G": 1e9}[m.group(2)]
    return float(m.group(1)) * scale / 1024**2


def validate(obj: dict) -> None:
    """kubernetes-validate, strict (an unknown field fails), with a one-line message instead of the schema."""
    try:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(map(str, exc.path))
        pytest.fail(f"{obj['kind']} {obj['metadata']['name']}: {where}: {exc.message}", pytrace=False)


def one(objects: list[dict], kind: str, component: str | None = None) -> dict:
    found = [o for o in objects if o["kind"] == kind
             and (component is None or o["metadata"]["labels"]["app.kubernetes.io/component"] == component)]
    assert len(found) == 1, f"{len(found)} {kind} objects"
    return found[0]


# What the kubelet puts for a fieldRef to the pod's name (a Deployment's pod: name, ReplicaSet hash, suffix).
POD_NAME = "trendcast-worker-7c9d5b8f4-x2x4q"


def _env_value(e: dict) -> str:
    if "value" in e:
        return e["value"]
    return {"metadata.name": POD_NAME}[e["valueFrom"]["fieldRef"]["fieldPath"]]


def env_of(objects: list[dict], container: dict) -> dict[str, str]:
    """A container's environment: its ConfigMaps (envFrom) and then its own env, as the kubelet builds it."""
    maps = {o["metadata"]["name"]: o["data"] for o in objects if o["kind"] == "ConfigMap"}
    env: dict[str, str] = {}
    for src in container.get("envFrom", []):
        env |= maps[src["configMapRef"]["name"]]
    return env | {e["name"]: _env_value(e) for e in container.get("env", [])}


def settings_from(env: dict[str, str]) -> Settings:
    return load_settings(**{k.removeprefix("TRENDCAST_").lower(): v for k, v in env.items()
                            if k.startswith("TRENDCAST_")})


@pytest.fixture(scope="module")
def base() -> list[dict]:
    return build(K8S / "base")


@pytest.fixture(scope="module")
def worker(base) -> dict:
    return one(base, "Deployment")


@pytest.fixture(scope="module")
def container(worker) -> dict:
    (c,) = worker["spec"]["template"]["spec"]["containers"]
    return c


@pytest.fixture(scope="module")
def settings(base, container) -> Settings:
    return settings_from(env_of(base, container))


def test_the_base_has_every_object_and_the_builtin_ones_validate(base) -> None:
    kinds = sorted(o["kind"] for o in base)
    assert kinds == sorted(["ConfigMap", "ConfigMap", "Deployment", "Service", "ServiceMonitor",
                            "PodDisruptionBudget", "Job", "ScaledObject"])
    for obj in base:
        if obj["kind"] in CRDS:
            assert obj["apiVersion"] == CRDS[obj["kind"]]
        else:
            validate(obj)


def test_every_trendcast_variable_is_a_setting_and_validates(base) -> None:
    for c in containers_of(base):
        env = env_of(base, c)
        unknown = [v for v in env if v.startswith("TRENDCAST_")
                   and v.removeprefix("TRENDCAST_").lower() not in Settings.model_fields]
        assert not unknown, f"container {c['name']} sets {unknown}, which Settings does not define"
        settings_from(env)  # and their values validate
    # Also what the overlays add, which build() merges into the same ConfigMap.
    for text in K8S.rglob("*.yaml"):
        for var in re.findall(r"\bTRENDCAST_[A-Z0-9_]+", text.read_text()):
            assert var.removeprefix("TRENDCAST_").lower() in Settings.model_fields, f"{text}: {var}"


def test_the_worker_runs_the_image_and_user_the_dockerfile_makes(worker, container) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    user = re.search(r"^USER (\d+):(\d+)$", dockerfile, re.M)
    assert user, "the Dockerfile's USER must be numeric, or runAsNonRoot cannot verify it"
    pod = worker["spec"]["template"]["spec"]["securityContext"]
    assert pod["runAsNonRoot"] and (pod["runAsUser"], pod["runAsGroup"]) == tuple(map(int, user.groups()))
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert container["image"] == f"trendcast:{version}"
    assert re.search(r'^ENTRYPOINT \["trendcast"\]$', dockerfile, re.M)
    group = typer.main.get_command(cli)
    args = container["args"]
    ctx = group.make_context("trendcast", list(args), resilient_parsing=True)
    _, sub, rest = group.resolve_command(ctx, list(args))  # raises on an unknown command
    sub.make_context(args[0], list(rest), parent=ctx)


def test_the_worker_writes_only_to_its_volumes(worker, container, settings) -> None:
    assert container["securityContext"]["readOnlyRootFilesystem"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in worker["spec"]["template"]["spec"]["volumes"]}
    # Faust's data dir, and /tmp where torch makes its torchinductor folder at start.
    for path in (settings.data_dir, "/tmp"):
        assert path in mounts and "emptyDir" in volumes[mounts[path]], path
    assert settings.store == "memory://"  # nothing on disk to keep: why this is a Deployment


def test_probes_ask_the_endpoints_the_worker_serves(container, settings) -> None:
    assert settings.metrics_host == "0.0.0.0"  # reachable from the kubelet and Prometheus
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": settings.metrics_port}
    probes = {k: container[k]["httpGet"] for k in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert all(p["port"] in ("metrics", settings.metrics_port) for p in probes.values())
    # A worker restoring its tables is alive and not ready: a liveness probe on /readyz would
    # kill every worker in a rebalance.
    assert probes["startupProbe"]["path"] == probes["livenessProbe"]["path"] == "/healthz"
    assert probes["readinessProbe"]["path"] == "/readyz"

    def status(health: Health, path: str) -> int:
        environ = {"PATH_INFO": path}
        setup_testing_defaults(environ)
        got = []
        wsgi_app(CollectorRegistry(), health)(environ, lambda s, headers: got.append(s))
        return int(got[0][:3])

    starting = Health()
    assert status(starting, "/healthz") == 200 and status(starting, "/readyz") == 503
    ready = Health(joined=True, recovered=True, model_serving=True)
    assert status(ready, "/readyz") == 200 and status(ready, "/metrics") == 200
    start = container["startupProbe"]
    assert start["periodSeconds"] * start["failureThreshold"] > 5 * bench("cold start to ready (s)")


def test_memory_covers_the_benchmark(worker, container) -> None:
    notes = worker["metadata"]["annotations"]
    needed = float(notes["trendcast/baseline-rss-mib"]) + int(notes["trendcast/sku-capacity"]) * bench(
        "worker memory growth per SKU (bytes)") / 1024**2
    resources = container["resources"]
    request, limit = mebibytes(resources["requests"]["memory"]), mebibytes(resources["limits"]["memory"])
    assert needed <= request <= limit, f"{needed:.0f} MiB needed, {request:.0f} requested, {limit:.0f} the limit"


def test_topic_job_creates_what_the_worker_uses(base, settings) -> None:
    job = one(base, "Job")
    assert job["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] != "worker"
    (c,) = job["spec"]["template"]["spec"]["containers"]
    env = env_of(base, c)
    script_dir = next(m["mountPath"] for m in c["volumeMounts"])
    volume = next(v for v in job["spec"]["template"]["spec"]["volumes"])
    scripts = next(o for o in base if o["kind"] == "ConfigMap" and o["metadata"]["name"] == volume["configMap"]["name"])
    name = c["command"][-1].removeprefix(script_dir + "/")
    assert scripts["data"][name] == (ROOT / "deploy/kafka/create-topics.sh").read_text(), \
        "deploy/kafka/create-topics.sh (compose's) is no longer the k8s Job's script: make it a symlink again"
    out = subprocess.run(["bash", "-c", scripts["data"][name]], capture_output=True, text=True, check=True,
                         env={"PATH": os.environ["PATH"], **env, "DRY_RUN": "1"})
    created = {}
    for line in out.stdout.splitlines():
        args = shlex.split(line)
        opts = {a: args[i + 1] for i, a in enumerate(args[:-1]) if a.startswith("--")}
        assert opts["--bootstrap-server"] == settings.bootstrap
        created[opts["--topic"]] = opts
    changelogs = {faust.App(settings.app_id).Table(t).changelog_topic.get_topic_name() for t in TABLES}
    assert set(created) == set(all_topics(settings)) | changelogs
    assert {t: int(o["--partitions"]) for t, o in created.items()} == {
        t: all_topics(settings).get(t, settings.partitions) for t in created}
    assert int(created[settings.topic_models]["--partitions"]) == 1
    assert {int(o["--replication-factor"]) for o in created.values()} == {settings.replication}


def test_scaled_object_follows_the_group_and_its_partitions(base, worker, settings) -> None:
    so = one(base, "ScaledObject")["spec"]
    assert set(so) <= {"scaleTargetRef", "minReplicaCount", "maxReplicaCount", "pollingInterval", "cooldownPeriod",
                       "idleReplicaCount", "initialCooldownPeriod", "advanced", "fallback", "triggers"}
    assert so["scaleTargetRef"]["name"] == worker["metadata"]["name"]
    assert so["scaleTargetRef"].get("kind", "Deployment") == "Deployment"
    assert "replicas" not in worker["spec"], "a replicas field resets KEDA's count on every apply"
    # More workers than partitions sit idle: the group gives each partition to one of them.
    assert so["minReplicaCount"] == 1 and so["maxReplicaCount"] == settings.partitions
    conf = faust.App(settings.app_id, **faust_config(settings)).conf
    # The topics the worker's agents read (stream_app/worker/app.py, _wire).
    consumed = {*settings.source_topics, settings.topic_catalog} | ({settings.topic_inventory} - {None})
    topics = []
    for t in so["triggers"]:
        meta = t["metadata"]
        assert t["type"] == "kafka"
        assert meta["bootstrapServers"] == settings.bootstrap
        assert meta["consumerGroup"] == conf.id  # Faust's group id is the app id
        assert meta["offsetResetPolicy"] == conf.consumer_auto_offset_reset
        assert meta.get("allowIdleConsumers", "false") == "false"
        # Worth a rebalance only for a backlog one worker would not clear while the group restores.
        assert int(meta["lagThreshold"]) >= bench("worker end to end (events/s)") * bench(
            "restart after SIGKILL to ready, state recovered (s)")
        topics.append(meta["topic"])
    assert sorted(topics) == sorted(consumed)
    # KEDA hands the behaviour to the HPA it makes: validate it as one.
    behavior = so["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "x"},
           "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"},
                    "minReplicas": so["minReplicaCount"], "maxReplicas": so["maxReplicaCount"], "behavior": behavior}}
    validate(hpa)
    restore = bench("restart after SIGKILL to ready, state recovered (s)")
    assert all(p["periodSeconds"] > restore for p in behavior["scaleUp"]["policies"]), \
        "a scale-up step must not start before the previous rebalance has restored"


def test_service_and_service_monitor_scrape_every_worker(base, worker, container) -> None:
    pod_labels = worker["spec"]["template"]["metadata"]["labels"]
    svc = one(base, "Service")
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    job_pod = one(base, "Job")["spec"]["template"]["metadata"]["labels"]
    assert not svc["spec"]["selector"].items() <= job_pod.items()
    assert svc["spec"]["publishNotReadyAddresses"], "a restoring worker's metrics must still be scraped"
    (port,) = svc["spec"]["ports"]
    assert port["targetPort"] in {p["name"] for p in container["ports"]}
    sm = one(base, "ServiceMonitor")
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    (endpoint,) = sm["spec"]["endpoints"]
    assert endpoint["port"] == port["name"] and endpoint["path"] == "/metrics"
    # The operator's job label is the Service name unless jobLabel says otherwise; the alerts select it.
    job = svc["metadata"]["labels"][sm["spec"]["jobLabel"]] if "jobLabel" in sm["spec"] else svc["metadata"]["name"]
    alerts = (ROOT / "deploy/prometheus/alerts.yml").read_text()
    assert set(re.findall(r'job="([^"]+)"', alerts)) == {job}
    compose_jobs = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())["scrape_configs"]
    assert job in {j["job_name"] for j in compose_jobs}


def test_pdb_lets_one_worker_go_at_a_time(base, worker) -> None:
    pdb = one(base, "PodDisruptionBudget")["spec"]
    assert pdb["selector"]["matchLabels"].items() <= worker["spec"]["template"]["metadata"]["labels"].items()
    # minAvailable 1 would block every drain with one replica, KEDA's minimum.
    assert pdb == {**pdb, "maxUnavailable": 1} and "minAvailable" not in pdb


def test_each_worker_is_a_static_group_member_under_its_pod_name(container, settings) -> None:
    """A container restarted in its pod (OOM, crash) rejoins under the same name: no wait for its dead session."""
    (var,) = [e for e in container["env"] if e["name"] == "TRENDCAST_GROUP_INSTANCE_ID"]
    assert var["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"  # unique per pod, kept across restarts
    assert settings.group_instance_id == POD_NAME  # a pod name is a valid instance id
