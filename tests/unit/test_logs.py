"""Log set-up: JSON lines with the extra fields, secrets redacted, one line per forecast tick."""

from __future__ import annotations

import io
import json
import logging
import logging.config

from stream_app.worker.logs import RedactSecrets, log_tick, logging_config


def capture(fmt: str, secrets=()) -> tuple[logging.Logger, io.StringIO]:
    config = logging_config("INFO", fmt, secrets)
    stream = io.StringIO()
    config["handlers"]["default"]["stream"] = stream
    logging.config.dictConfig(config)
    return logging.getLogger("trendcast.test"), stream


def teardown_function() -> None:
    logging.config.dictConfig({"version": 1, "disable_existing_loggers": False, "root": {"handlers": []}})


def test_json_lines_carry_the_tick_fields():
    log, out = capture("json")
    log_tick(log, 3, 20_000, 1200, 4, 0.0123456, outcomes=2400)
    rec = json.loads(out.getvalue())
    assert rec["level"] == "INFO" and rec["logger"] == "trendcast.test"
    assert rec["msg"] == "tick partition=3 as_of=2024-10-04 skus=1200 alerts=4 outcomes=2400 seconds=0.012"
    assert {k: rec[k] for k in ("event", "partition", "as_of", "skus", "alerts", "outcomes", "seconds")} == {
        "event": "forecast_tick", "partition": 3, "as_of": "2024-10-04", "skus": 1200, "alerts": 4,
        "outcomes": 2400, "seconds": 0.012346}
    assert rec["ts"].endswith("Z")


def test_text_lines():
    log, out = capture("text")
    log_tick(log, 0, 20_000, 5, 0, 0.5)
    line = out.getvalue().strip()
    assert line.endswith("INFO trendcast.test tick partition=0 as_of=2024-10-04 skus=5 alerts=0 outcomes=0 seconds=0.500")


def test_secrets_are_redacted_in_messages_and_tracebacks():
    log, out = capture("json", ["hunter2"])
    log.warning("connecting with password=%s", "hunter2")
    try:
        raise ValueError("auth failed for hunter2")
    except ValueError:
        log.exception("boom")
    text = out.getvalue()
    assert "hunter2" not in text and text.count("**********") >= 2
    assert "ValueError" in text


def test_redaction_without_secrets_changes_nothing():
    rec = logging.LogRecord("x", logging.INFO, "", 0, "a %s", ("b",), None)
    assert RedactSecrets([""]).filter(rec) and rec.getMessage() == "a b" and rec.args == ("b",)
