"""``trendcast simulate`` and ``trendcast replay`` from the command line: files out, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli import run_cli

SAMPLE = Path(__file__).parents[1] / "data" / "uci_online_retail_sample.csv.gz"
BROKER = {"TRENDCAST_BROKER": "kafka://127.0.0.1:9"}


@pytest.mark.parametrize(
    "args,env,needle",
    [
        (["replay", "/no/such/file.csv.gz"], BROKER, "no such file or folder"),
        (["replay", str(SAMPLE), "--speedup", "0"], BROKER, "--speedup"),
        (["replay", str(SAMPLE), "--speedup", "fast"], BROKER, "--speedup"),
        (["replay", str(SAMPLE), "--source", "kaggle"], BROKER, "unknown --source"),
        (["replay", str(SAMPLE)], {}, "TRENDCAST_BROKER"),
        (["replay", str(SAMPLE), "--since", "Christmas", "--out", "x"], {}, "--since"),
        (["replay", str(SAMPLE), "--out", "x", "--speedup", "10"], {}, "--speedup"),
        (["replay", "pyproject.toml", "--out", "x"], {}, "not the UCI Online Retail CSV"),
        (["replay", "schemas", "--source", "events", "--out", "x"], {}, "no event files"),
        (["simulate", "--speedup", "100"], {}, "--kafka"),
        (["simulate", "--kafka"], {}, "TRENDCAST_BROKER"),
        (["simulate", "--scenarios", "promotion,teleport"], {}, "teleport"),
        (["simulate", "--start", "2024-13-01"], {}, "--start"),
        (["simulate", "--skus", "0"], {}, "--skus"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(args, env, needle, tmp_path):
    args = [str(tmp_path / "out") if a == "x" else a for a in args]
    r = run_cli(*args, **env)
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0] and lines[0].startswith("trendcast: "), r.stderr
    assert not (tmp_path / "out").exists()


def test_simulate_writes_events_labels_and_parameters(tmp_path):
    out = tmp_path / "sim"
    r = run_cli("simulate", "--out", str(out), "--skus", "8", "--days", "4", "--seed", "3",
                "--scenarios", "promotion,slow_movers")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"wrote {out}: clicks=") and " catalog=8 labels=" in r.stdout
    assert {p.name for p in out.iterdir()} == {"catalog.jsonl", "clicks.jsonl", "carts.jsonl", "orders.jsonl",
                                               "labels.csv", "simulation.json"}
    params = json.loads((out / "simulation.json").read_text())
    assert params["seed"] == 3 and params["scenarios"] == ["promotion", "slow_movers"]
    assert params["level_shift"] is None


def test_simulate_level_shift_factor(tmp_path):
    r = run_cli("simulate", "--out", str(tmp_path / "s"), "--skus", "8", "--days", "10", "--level-shift-factor", "2")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "s" / "simulation.json").read_text())["level_shift"]["factor"] == 2.0
    r = run_cli("simulate", "--out", str(tmp_path / "t"), "--days", "10", "--scenarios", "promotion",
                "--level-shift-factor", "2")
    assert r.returncode == 2 and "--level-shift-factor needs the level_shift scenario" in r.stderr


def test_replay_to_files_prints_the_summary(tmp_path):
    out = tmp_path / "uci"
    r = run_cli("replay", str(SAMPLE), "--out", str(out), "--until", "2010-12-20")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"wrote {out}: orders=") and lines[0].endswith(" catalog=100")
    assert lines[1] == "no clicks or carts in this dataset: none produced (the worker runs without them)"
    assert lines[2].startswith("skipped rows: ") and "cancellation=" in lines[2] and "outside_window=" in lines[2]
    assert len(lines) == 3  # no Christmas gap before 20 December: no warning
    # Across the shop's 12-day Christmas closing: a real jump, confirmed by the orders after it; nothing lost.
    r = run_cli("replay", str(SAMPLE), "--out", str(tmp_path / "all"))
    assert r.returncode == 0 and "warning" not in r.stdout, r.stdout
    # A producer whose clock is 400 days ahead is still caught.
    folder = tmp_path / "bad"
    folder.mkdir()
    t0 = 1_700_000_000_000
    orders = [{"schema_version": 1, "event_id": f"o{i}", "order_id": f"x{i}", "sku": "A", "ts": t0 + i * 3_600_000,
               "qty": 1, "unit_price": 1.0} for i in range(5)]
    orders[2]["ts"] += 400 * 86_400_000
    (folder / "orders.jsonl").write_text("".join(json.dumps(o) + "\n" for o in orders))
    r = run_cli("replay", str(folder), "--source", "events", "--out", str(tmp_path / "bad-out"))
    assert r.returncode == 0, r.stderr
    assert "warning: 1 events come more than TRENDCAST_MAX_AHEAD_S" in r.stdout, r.stdout
