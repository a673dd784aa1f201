"""docker-compose.yml, checked against the code (no Docker engine runs here, so `docker compose config` cannot).

Structure of the services, Kafka in KRaft mode on one node, the topics the
init step creates (names, partitions, compaction) against what the worker
uses, every TRENDCAST_* variable against Settings, every trendcast command
line against the real CLI, and every mounted file, port and URL against the
repository and the other services.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import faust
import pytest
import typer
import yaml

from stream_app.worker.app import TABLES
from stream_app.cli.main import cli
from stream_app.worker.runner import all_topics
from stream_app.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILES = ("docker-compose.yml", "docker-compose.gpu.yml")


def interpolate(value: object) -> str:
    """Compose's ``${VAR:-default}`` / ``${VAR}`` substitution with an empty environment."""
    text = str(value)
    assert "$$" not in text
    return re.sub(r"\$\{(\w+)(?::?-([^}]*))?\}", lambda m: m.group(2) or "", text)


def load(name: str = "docker-compose.yml") -> dict:
    return yaml.safe_load((ROOT / name).read_text())


def env_of(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    return {k: interpolate(v) for k, v in env.items()}


def settings_of(service: dict) -> Settings:
    env = {k.removeprefix("TRENDCAST_").lower(): v for k, v in env_of(service).items() if k.startswith("TRENDCAST_")}
    return load_settings(**env)


@pytest.fixture(scope="module")
def compose() -> dict:
    return load()


def test_services(compose) -> None:
    assert set(compose["services"]) == {"kafka", "topic-init", "worker", "producer", "prometheus", "grafana"}
    assert not any("zookeeper" in str(s.get("image", "")) for s in compose["services"].values())


def test_kafka_runs_kraft_on_one_node(compose) -> None:
    kafka = compose["services"]["kafka"]
    env = env_of(kafka)
    assert kafka["image"].startswith("apache/kafka:")
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert "CONTROLLER://:9093" in env["KAFKA_LISTENERS"]
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"  # one node cannot hold 3 replicas
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert "healthcheck" in kafka


def test_topic_init_creates_what_the_worker_uses(compose) -> None:
    init = compose["services"]["topic-init"]
    worker = settings_of(compose["services"]["worker"])
    assert init["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert compose["services"]["worker"]["depends_on"]["topic-init"]["condition"] == "service_completed_successfully"
    host_script = next(v.split(":")[0] for v in init["volumes"] if v.endswith(".sh:ro") or ".sh:" in v)
    env = {"PATH": os.environ["PATH"], **env_of(init), "DRY_RUN": "1"}
    out = subprocess.run(["bash", str(ROOT / host_script)], env=env, capture_output=True, text=True, check=True)
    created: dict[str, dict] = {}
    for line in out.stdout.splitlines():
        args = shlex.split(line)
        opts = {a: args[i + 1] for i, a in enumerate(args[:-1]) if a.startswith("--")}
        assert "--create" in args and opts["--bootstrap-server"] == worker.bootstrap
        created[opts["--topic"]] = opts
    app = faust.App(worker.app_id)
    changelogs = {app.Table(name).changelog_topic.get_topic_name() for name in TABLES}
    assert changelogs == {f"{worker.app_id}-{name}-changelog" for name in TABLES}
    assert set(created) == set(all_topics(worker)) | changelogs
    for name, opts in created.items():
        assert int(opts["--partitions"]) == all_topics(worker).get(name, worker.partitions), name
        assert int(opts["--replication-factor"]) == worker.replication, name
        compacted = name in changelogs or name == worker.topic_models
        assert (opts.get("--config") == "cleanup.policy=compact") == compacted, name
    assert int(created[worker.topic_models]["--partitions"]) == 1


@pytest.mark.parametrize("file", COMPOSE_FILES)
def test_every_trendcast_variable_is_a_setting(file) -> None:
    for name, service in load(file)["services"].items():
        for var in env_of(service):
            if var.startswith("TRENDCAST_"):
                assert var.removeprefix("TRENDCAST_").lower() in Settings.model_fields, f"{file} {name}: {var}"


def dockerfile() -> dict[str, list[str]]:
    """ENTRYPOINT and CMD (exec form) and the sources of COPY."""
    out: dict[str, list[str]] = {"COPY": []}
    import json

    for line in (ROOT / "Dockerfile").read_text().splitlines():
        word, _, rest = line.partition(" ")
        if word in ("ENTRYPOINT", "CMD"):
            out[word] = json.loads(rest)
        elif word == "COPY":
            out["COPY"].extend(rest.split()[:-1])
    return out


def test_every_trendcast_command_parses_with_the_cli(compose) -> None:
    df = dockerfile()
    assert df["ENTRYPOINT"] == ["trendcast"]
    group = typer.main.get_command(cli)
    seen = 0
    for name, service in compose["services"].items():
        if service.get("image", "").startswith("trendcast:") or "build" in service:
            args = service.get("command", df["CMD"])
            ctx = group.make_context("trendcast", list(args), resilient_parsing=True)
            _, sub, rest = group.resolve_command(ctx, list(args))  # raises on an unknown command
            sub.make_context(args[0], list(rest), parent=ctx)  # raises on a bad option or value
            settings_of(service)  # and its settings validate
            seen += 1
    assert seen == 2  # the worker and the producer
    producer = compose["services"]["producer"]
    assert producer["command"][0] == "simulate" and "--kafka" in producer["command"]


def test_mounted_and_copied_files_exist(compose) -> None:
    for name, service in compose["services"].items():
        for v in service.get("volumes", []):
            host = v.split(":")[0]
            if host.startswith("."):
                assert (ROOT / host).exists(), f"{name} mounts {host}, which is not in the repository"
            else:
                assert host in compose["volumes"], f"{name}: undeclared volume {host}"
    for src in dockerfile()["COPY"]:
        assert (ROOT / src).exists(), f"Dockerfile copies {src}, which is not in the repository"


def test_ports_and_addresses_agree(compose) -> None:
    services = compose["services"]
    worker = services["worker"]
    s = settings_of(worker)
    assert s.metrics_host == "0.0.0.0"  # reachable from the Prometheus container
    assert f"{s.metrics_port}:{s.metrics_port}" in worker["ports"]
    assert f":{s.metrics_port}/healthz" in " ".join(worker["healthcheck"]["test"])
    assert s.broker == "kafka://kafka:9092" and "PLAINTEXT://:9092" in env_of(services["kafka"])["KAFKA_LISTENERS"]

    prom = services["prometheus"]
    config_arg = next(a for a in prom["command"] if a.startswith("--config.file="))
    config_path = config_arg.split("=", 1)[1]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in prom["volumes"] if v.startswith("./")}
    mount_dir = next(c for c in mounts if config_path.startswith(c + "/"))
    config_file = ROOT / mounts[mount_dir] / config_path[len(mount_dir) + 1:]
    config = yaml.safe_load(config_file.read_text())
    for rule_file in config["rule_files"]:
        assert (config_file.parent / rule_file).exists()
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "trendcast")
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == [f"worker:{s.metrics_port}"]
    assert "9090:9090" in prom["ports"]

    ds = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    assert ds["datasources"][0]["url"] == "http://prometheus:9090"
    graf_mounts = {v.split(":")[1] for v in services["grafana"]["volumes"]}
    assert "/etc/grafana/provisioning" in graf_mounts


def test_gpu_variant_overrides_only_the_worker_image() -> None:
    gpu = load("docker-compose.gpu.yml")["services"]
    assert set(gpu) <= {"worker", "producer"}
    devices = gpu["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    assert "TORCH_INDEX_URL" in gpu["worker"]["build"]["args"]
    assert "ARG TORCH_INDEX_URL" in (ROOT / "Dockerfile").read_text()
