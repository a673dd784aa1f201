"""The README's settings table is the Settings class; `trendcast config` shows every setting."""

from __future__ import annotations

from pathlib import Path

from test_cli import run_cli

from stream_app.settings import Settings
from stream_app.settings_doc import BEGIN, END, effective, markdown_table, replace_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_table_is_current():
    text = README.read_text()
    assert replace_table(text) == text, "README settings table is stale: python -m stream_app.settings_doc --write README.md"


def test_table_has_every_setting_with_its_default():
    table = markdown_table()
    for name, info in Settings.model_fields.items():
        row = next(ln for ln in table.splitlines() if ln.startswith(f"| `TRENDCAST_{name.upper()}` |"))
        default = info.get_default(call_default_factory=True)
        assert ("unset" if default is None else f"`{default}`") in row
    assert BEGIN in README.read_text() and END in README.read_text()


def test_config_prints_every_setting():
    r = run_cli("config", TRENDCAST_PARTITIONS="8")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == len(Settings.model_fields)
    assert "TRENDCAST_PARTITIONS=8" in lines and "TRENDCAST_BROKER=" in lines
    assert set(effective(Settings())) == {ln.split("=", 1)[0] for ln in lines}


def test_dotenv_file_is_read_and_the_environment_wins(tmp_path):
    import os
    import subprocess
    import sys

    (tmp_path / ".env").write_text("TRENDCAST_PARTITIONS=6\nTRENDCAST_LOG_FORMAT=json\nTRENDCAST_SASL_PASSWORD=from-file\n"
                                   "TRENDCAST_SECURITY_PROTOCOL=SASL_SSL\nTRENDCAST_SASL_MECHANISM=PLAIN\n"
                                   "TRENDCAST_SASL_USERNAME=u\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRENDCAST_")}
    env["TRENDCAST_LOG_FORMAT"] = "text"
    r = subprocess.run([sys.executable, "-m", "stream_app.cli", "config"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "TRENDCAST_PARTITIONS=6" in lines and "TRENDCAST_LOG_FORMAT=text" in lines
    assert "TRENDCAST_SASL_PASSWORD=**********" in lines and "from-file" not in r.stdout
