"""deploy/k8s's kustomizations: what each refers to exists, and the overlays make the CPU and GPU workers.

The structure and the settings each overlay sets run everywhere (tests/deploy/
kustomize.py reads them); the overlays as a cluster gets them, patches
applied and generated names hashed, are rendered by ``kubectl kustomize``
and validated, where kubectl is installed.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from kustomize import build, containers_of, kubectl_kustomize_version, kustomization, patch_targets, render
from test_k8s import K8S, ROOT, env_of, mebibytes, one, settings_from, validate

FOLDERS = sorted(p.parent for p in K8S.rglob("kustomization.yaml"))
OVERLAYS = {"cpu": K8S / "overlays" / "cpu", "gpu": K8S / "overlays" / "gpu"}
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]

# Loud on purpose, as for promtool: a skip here means the overlays were not rendered.
needs_kubectl = pytest.mark.skipif(
    (kubectl_kustomize_version() or 0) < 4,
    reason="KUBECTL (with kustomize v4+) NOT FOUND: overlays NOT rendered or validated; kubectl 1.21+ has it built in",
)


def worker_container(objects: list[dict]) -> dict:
    (c,) = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    return c


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: str(p.relative_to(K8S)) or "default")
def test_every_kustomization_refers_to_what_exists(folder: Path) -> None:
    k = kustomization(folder)
    assert k["apiVersion"] == "kustomize.config.k8s.io/v1beta1" and k["kind"] == "Kustomization"
    for res in k.get("resources", []):
        path = folder / res
        assert path.is_file() or (path / "kustomization.yaml").is_file(), f"{folder}: resource {res} does not exist"
    for gen in k.get("configMapGenerator", []):
        for f in gen.get("envs", []) + gen.get("files", []):
            assert (folder / f).is_file(), f"{folder}: generator {gen['name']} reads {f}, which does not exist"
    made = {(o["kind"], o["metadata"]["name"]) for o in build(folder)}
    for target in patch_targets(folder):
        assert target in made, f"{folder}: a patch changes {target}, which its resources do not make"
    # And nothing in the folder is forgotten: every YAML file is a resource or a patch.
    used = {folder / r for r in k.get("resources", [])} | {folder / p["path"] for p in k.get("patches", [])}
    for f in folder.glob("*.yaml"):
        assert f.name == "kustomization.yaml" or f in used, f"{f} is not in its kustomization"


@pytest.mark.parametrize(("overlay", "device", "tag"), [("cpu", "cpu", VERSION), ("gpu", "cuda", f"{VERSION}-cuda")])
def test_each_overlay_pins_its_device_and_image(overlay, device, tag) -> None:
    objects = build(OVERLAYS[overlay])
    c = worker_container(objects)
    assert settings_from(env_of(objects, c)).device == device
    assert c["image"] == f"trendcast:{tag}"


def test_the_default_is_the_cpu_worker() -> None:
    assert kustomization(K8S)["resources"] == ["overlays/cpu"]


@needs_kubectl
@pytest.mark.parametrize("folder", [K8S, *OVERLAYS.values()], ids=["default", *OVERLAYS])
def test_rendered_objects_validate_and_refer_to_each_other(folder: Path) -> None:
    objects = render(folder)
    assert len(objects) == len(build(K8S / "base"))
    for obj in objects:
        if obj["kind"] not in ("ScaledObject", "ServiceMonitor"):  # CRDs: test_k8s.py checks them
            validate(obj)
    maps = {o["metadata"]["name"] for o in objects if o["kind"] == "ConfigMap"}
    for o in objects:
        if o["kind"] in ("Deployment", "Job"):
            pod = o["spec"]["template"]["spec"]
            refs = {s["configMapRef"]["name"] for c in pod["containers"] for s in c.get("envFrom", [])}
            refs |= {v["configMap"]["name"] for v in pod.get("volumes", []) if "configMap" in v}
            assert refs <= maps, f"{o['metadata']['name']} refers to ConfigMaps {sorted(refs - maps)} not rendered"
    for c in containers_of(objects):
        settings_from(env_of(objects, c))


@needs_kubectl
def test_rendered_gpu_worker_asks_for_a_gpu_node_and_more_memory() -> None:
    cpu, gpu = render(OVERLAYS["cpu"]), render(OVERLAYS["gpu"])
    assert render(K8S) == cpu
    c_cpu, c_gpu = worker_container(cpu), worker_container(gpu)
    assert "nvidia.com/gpu" not in c_cpu["resources"].get("limits", {})
    assert c_gpu["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert settings_from(env_of(gpu, c_gpu)).device == "cuda"
    pod = one(gpu, "Deployment")["spec"]["template"]["spec"]
    assert pod["nodeSelector"] and any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])
    for kind in ("requests", "limits"):
        assert mebibytes(c_gpu["resources"][kind]["memory"]) >= mebibytes(c_cpu["resources"][kind]["memory"])
    # The patch changed the worker only: probes, ports and the topic Job are the base's.
    assert c_gpu["livenessProbe"] == c_cpu["livenessProbe"] and c_gpu["ports"] == c_cpu["ports"]
    assert one(gpu, "Job")["spec"]["template"]["spec"]["containers"][0]["image"] == \
        one(cpu, "Job")["spec"]["template"]["spec"]["containers"][0]["image"]
