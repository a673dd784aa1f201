"""deploy/k8s read the way kustomize reads it, for the deploy tests.

``build`` is a small reading that needs no binary and does only what deploy/k8s
uses: resources (files and folders), configMapGenerator (envs, files, literals,
``behavior: merge``) and images. It applies no patch and adds no hash suffix
to generated names; ``patch_targets`` only says which objects the patches
name, so a test can check that they exist. The overlays as a cluster would get
them come from ``render``: ``kubectl kustomize`` (kustomize v4 or newer), where
it is installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml

KUBECTL = shutil.which("kubectl")


def kustomization(folder: Path) -> dict:
    return yaml.safe_load((folder / "kustomization.yaml").read_text())


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, as kustomize's ``envs`` reads them (``#`` comments, blank lines skipped)."""
    pairs = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"{path.name}: {line!r} is not KEY=VALUE"
            pairs[key] = value
    return pairs


def _generated(folder: Path, spec: dict) -> dict[str, str]:
    data: dict[str, str] = {}
    for env in spec.get("envs", []):
        data |= read_env_file(folder / env)
    for f in spec.get("files", []):
        data[Path(f).name] = (folder / f).read_text()
    for lit in spec.get("literals", []):
        key, _, value = lit.partition("=")
        data[key] = value
    return data


def build(folder: Path) -> list[dict]:
    """The objects ``folder``'s kustomization makes, patches left out."""
    k = kustomization(folder)
    objects: list[dict] = []
    for res in k.get("resources", []):
        path = folder / res
        objects += build(path) if path.is_dir() else [d for d in yaml.safe_load_all(path.read_text()) if d]
    for spec in k.get("configMapGenerator", []):
        data = _generated(folder, spec)
        existing = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == spec["name"]]
        if spec.get("behavior") == "merge":
            assert existing, f"{folder}: merges into ConfigMap {spec['name']}, which its resources do not make"
            existing[0]["data"] = {**existing[0]["data"], **data}
        else:
            assert not existing, f"{folder}: ConfigMap {spec['name']} made twice"
            objects.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": spec["name"]}, "data": data})
    for image in k.get("images", []):
        for c in containers_of(objects):
            name, _, tag = c["image"].partition(":")
            if name == image["name"]:
                c["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag)}"
    return objects


def patch_targets(folder: Path) -> list[tuple[str, str]]:
    """(kind, name) of each object the kustomization's patches change."""
    out = []
    for p in kustomization(folder).get("patches", []):
        if "target" in p:
            out.append((p["target"]["kind"], p["target"]["name"]))
        else:
            doc = yaml.safe_load((folder / p["path"]).read_text())
            out.append((doc["kind"], doc["metadata"]["name"]))
    return out


def containers_of(objects: list[dict]) -> list[dict]:
    return [c for o in objects if o["kind"] in ("Deployment", "Job")
            for c in o["spec"]["template"]["spec"]["containers"]]


def kubectl_kustomize_version() -> int | None:
    """Major version of the kustomize built into kubectl, None without kubectl."""
    if KUBECTL is None:
        return None
    out = subprocess.run([KUBECTL, "version", "--client"], capture_output=True, text=True, timeout=60).stdout
    m = re.search(r"Kustomize Version: v(\d+)", out)
    return int(m.group(1)) if m else 0


def render(folder: Path) -> list[dict]:
    """What ``kubectl apply -k folder`` would send, rendered by kubectl itself (no cluster needed)."""
    out = subprocess.run([KUBECTL, "kustomize", str(folder)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]
