"""A user's mistake gets one line that says what is wrong, and exit code 2; never a traceback."""

import os
import subprocess
import sys

import pytest

from stream_app.worker.broker import free_port


def run_cli(*args, timeout: float = 60, **env):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TRENDCAST_")}
    full_env.update(env)
    return subprocess.run([sys.executable, "-m", "stream_app.cli", *args], env=full_env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize(
    "args,env,needle",
    [
        (["demo", "--skus", "-5"], {}, "--skus"),
        (["bench", "--events", "abc"], {}, "--events"),
        (["bench", "--part", "gpu"], {}, "unknown --part 'gpu'"),
        (["bench", "--membership", "sticky"], {}, "unknown --membership 'sticky'"),
        (["bench", "--part", "scaling", "--scaling-skus", "10k,100k"], {}, "give SKU counts separated by commas"),
        (["bench", "--part", "scaling", "--scaling-skus", "50"], {}, "at least 100"),
        (["worker"], {"TRENDCAST_BROKER": "kafka://127.0.0.1:9", "TRENDCAST_SCORE_BATCH_SIZE": "0"},
         "TRENDCAST_SCORE_BATCH_SIZE"),
        (["frobnicate"], {}, "No such command"),
        (["tail"], {}, "Missing argument"),
        (["worker"], {}, "TRENDCAST_BROKER"),
        (["worker"], {"TRENDCAST_PARTITIONS": "x"}, "TRENDCAST_PARTITIONS"),
        (["worker"], {"TRENDCAST_BROKER": "localhost:9092"}, "kafka://host:port"),
        (["produce", "/no/such/file.jsonl"], {"TRENDCAST_BROKER": "kafka://127.0.0.1:9"}, "no such file"),
        (["explore"], {}, "TRENDCAST_BROKER"),
        (["retrain"], {}, "TRENDCAST_BROKER"),
        (["retrain", "--every", "weekly"], {"TRENDCAST_BROKER": "kafka://127.0.0.1:9"}, "e.g. 7d, 12h or 30m"),
        (["retrain", "--device", "tpu"], {"TRENDCAST_BROKER": "kafka://127.0.0.1:9"}, "auto, cpu or cuda"),
        (["retrain", "--device", "cuda"], {"TRENDCAST_BROKER": "kafka://127.0.0.1:9"}, "no CUDA device"),
        (["retrain"], {"TRENDCAST_BROKER": "kafka://127.0.0.1:9", "TRENDCAST_CONNECT_TIMEOUT_S": "1"},
         "127.0.0.1:9"),
        (["explore", "--port", "http"], {"TRENDCAST_BROKER": "kafka://127.0.0.1:9"}, "--port"),
        (["worker"], {"TRENDCAST_BROKER": "kafka://127.0.0.1:9", "TRENDCAST_EXPLORER": "true",
                      "TRENDCAST_METRICS_PORT": "0"}, "TRENDCAST_METRICS_PORT"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(args, env, needle):
    assert_one_line_error(run_cli(*args, **env), needle)


def assert_one_line_error(r, needle: str) -> None:
    """``r`` (a finished ``run_cli``) failed with exit code 2 and one ``trendcast: ...`` line holding ``needle``."""
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0] and lines[0].startswith("trendcast: "), r.stderr
    assert "Traceback" not in r.stderr


def test_unreachable_broker_is_one_line_and_exit_code_2():
    r = run_cli("worker", TRENDCAST_BROKER=f"kafka://127.0.0.1:{free_port()}", TRENDCAST_CONNECT_TIMEOUT_S="2")
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "did not answer" in lines[0], r.stderr


def test_config_prints_effective_settings():
    r = run_cli("config", TRENDCAST_PARTITIONS="8")
    assert r.returncode == 0 and "TRENDCAST_PARTITIONS=8" in r.stdout
