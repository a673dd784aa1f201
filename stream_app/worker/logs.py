"""Logging of the worker: plain text or one JSON object per line, secrets redacted.

Configured once, by the process that runs the worker (no logging set-up at
import time). Fields passed with ``extra={...}`` become JSON keys, so a log
pipeline can read ``skus`` or ``seconds`` without parsing the message. At
INFO the worker logs counts of SKUs, never lists of them.
"""

from __future__ import annotations

import logging
import logging.config
import time
from collections.abc import Iterable
from typing import Any

import orjson

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
MASK = "**********"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``ts`` (UTC, ISO 8601), ``level``, ``logger``, ``msg``, extra fields, ``exc``."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class RedactSecrets(logging.Filter):
    """Replace each of ``secrets`` with a mask wherever it appears in a record's message or exception."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        if any(s in text for s in self.secrets):
            for s in self.secrets:
                text = text.replace(s, MASK)
        record.msg, record.args = text, None
        return True


def logging_config(level: str, fmt: str, secrets: Iterable[str] = ()) -> dict:
    """A :func:`logging.config.dictConfig` dictionary: one stderr handler, ``fmt`` "text" or "json"."""
    formatter = {"()": JsonFormatter} if fmt == "json" else {"format": TEXT_FORMAT}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"trendcast": formatter},
        "filters": {"redact": {"()": RedactSecrets, "secrets": list(secrets)}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "trendcast",
                "filters": ["redact"],
                "level": level,
            }
        },
        "root": {"level": level, "handlers": ["default"]},
        # aiokafka logs every refused connection and heartbeat hiccup at INFO;
        # at DEBUG (TRENDCAST_LOG_LEVEL=DEBUG) its internals are what one is after.
        "loggers": {"aiokafka": {"level": "DEBUG" if level == "DEBUG" else "WARNING"}},
    }


def setup_logging(settings: Any) -> dict:
    """Configure logging from ``settings`` (``log_level``, ``log_format``); returns the config for Faust's worker."""
    password = settings.sasl_password.get_secret_value() if settings.sasl_password is not None else ""
    config = logging_config(settings.log_level, settings.log_format, [password])
    logging.config.dictConfig(config)
    return config


def log_tick(log: logging.Logger, partition: int, as_of_day: int, skus: int, alerts: int, seconds: float,
             outcomes: int = 0) -> None:
    """The one INFO line per forecast tick: partition, as-of day, SKU, alert and outcome counts, seconds."""
    as_of = time.strftime("%Y-%m-%d", time.gmtime(as_of_day * 86400))
    log.info(
        "tick partition=%d as_of=%s skus=%d alerts=%d outcomes=%d seconds=%.3f",
        partition, as_of, skus, alerts, outcomes, seconds,
        extra={"event": "forecast_tick", "partition": partition, "as_of": as_of, "skus": skus,
               "alerts": alerts, "outcomes": outcomes, "seconds": round(seconds, 6)},
    )
