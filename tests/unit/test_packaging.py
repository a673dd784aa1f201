"""The install is quiet and the wheel carries what the worker needs (the default checkpoint, the schemas)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_builds_without_warnings_and_ships_the_checkpoint(tmp_path):
    # No build isolation: the venv's setuptools builds it, so nothing is downloaded.
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    noise = [ln for ln in (r.stdout + r.stderr).splitlines()
             if "warning" in ln.lower() and "Location 'file:" not in ln]  # the host's pip config, not ours
    assert noise == [], "\n".join(noise)
    names = set(zipfile.ZipFile(next(tmp_path.glob("trendcast-*.whl"))).namelist())
    assert {"models/checkpoints/default.pt", "models/checkpoints/default.json",
            "schemas/forecasts.v2.schema.json", "stream_app/data/replay.py"} <= names
