"""The install is quiet and the wheel carries what the worker needs (the default checkpoint, the schemas)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_builds_without_warnings_and_ships_the_checkpoint(tmp_path):
    # A copy of what the build reads, so the build leaves no build/ or egg-info in the checkout.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for pkg in ("stream_app", "models", "schemas"):
        shutil.copytree(ROOT / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    # No build isolation: the venv's setuptools builds it, so nothing is downloaded.
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    noise = [ln for ln in (r.stdout + r.stderr).splitlines()
             if "warning" in ln.lower() and "Location 'file:" not in ln]  # the host's pip config, not ours
    assert noise == [], "\n".join(noise)
    names = set(zipfile.ZipFile(next((tmp_path / "dist").glob("trendcast-*.whl"))).namelist())
    assert {"models/checkpoints/default.pt", "models/checkpoints/default.json",
            "schemas/forecasts.v3.schema.json", "stream_app/data/replay.py"} <= names
