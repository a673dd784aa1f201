"""The edge of ``trendcast retrain``: one champion/challenger cycle, or one every ``--every``."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable

import orjson

from models.retraining import RetrainRules
from stream_app.requests import BadRequest
from stream_app.settings import Settings

log = logging.getLogger("trendcast")
UNITS_S = {"m": 60, "h": 3600, "d": 86_400}


def parse_every(text: str | None) -> float | None:
    """``"7d"``, ``"12h"`` or ``"30m"`` as seconds (None: run once); :class:`BadRequest` otherwise."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([mhd])\s*", text)
    if not m or float(m.group(1)) <= 0:
        raise BadRequest(f"--every {text!r}: give a positive number of minutes, hours or days, e.g. 7d, 12h or 30m")
    return float(m.group(1)) * UNITS_S[m.group(2)]


def run_retrain(settings: Settings, rules: RetrainRules, every_s: float | None, model_path: str | None,
                echo: Callable[[str], None], device: str = "auto") -> None:
    """Run a cycle now, then every ``every_s`` seconds (None: once); each cycle's summary is one JSON line.

    ``device``: ``auto`` (CUDA when torch sees a GPU), ``cpu`` or ``cuda``.
    """
    from models.text import pick_device

    if device not in ("auto", "cpu", "cuda"):
        raise BadRequest(f"--device {device!r}: auto, cpu or cuda")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise BadRequest("--device cuda: no CUDA device is visible; use auto or cpu")
    device = pick_device(device)
    from stream_app.worker.retrain_job import run_cycle
    from stream_app.worker.broker import wait_until_answers
    from stream_app.worker.kafka_io import KafkaUnavailable
    from stream_app.worker.security import aiokafka_kwargs

    async def loop() -> None:
        await wait_until_answers(settings.bootstrap, settings.connect_timeout_s, client=aiokafka_kwargs(settings))
        while True:
            try:
                result = await run_cycle(settings, rules, model_path=model_path, device=device)
                echo(orjson.dumps(result.summary()).decode())
            except KafkaUnavailable as exc:
                if every_s is None:
                    raise BadRequest(str(exc)) from None
                # A scheduled job outlives a broker outage: the next cycle tries again.
                log.warning("retrain cycle skipped: %s", exc)
            if every_s is None:
                return
            await asyncio.sleep(every_s)

    asyncio.run(loop())
