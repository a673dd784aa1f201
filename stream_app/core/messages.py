"""The ``forecasts`` messages (contract v3, schemas/forecasts.v3.schema.json), encoded from a tick's arrays.

One function for every forecast a tick makes, the model's and the launch
prior's alike, so both kinds carry the same fields.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from models.interface import HORIZONS, STAGES
from schemas import VERSIONS

FORECAST_VERSION = VERSIONS["forecasts"]


def forecast_messages(keys: list[bytes], flat: list[list[float]], active: list[bool], stages: list[int],
                      probs: list[list[float]], models: Sequence[dict], calibrated: bool, observed: list[dict],
                      cold_rows: set[int], as_of: int) -> list[tuple[bytes, bytes]]:
    """One ``(key, value)`` forecast message per SKU of ``keys``.

    ``flat``: per SKU, p10, p50, p90 of each horizon in turn (units);
    ``stages``: indices into :data:`STAGES`; ``probs``: stage probabilities;
    ``models``: per SKU, the model's ``{"name", "version"}``; ``calibrated``:
    whether the model's quantiles were calibrated (never a cold start's);
    ``observed``: what each SKU's window holds; ``cold_rows``: rows forecast
    from the launch prior, flagged ``cold_start``; ``as_of``: the end of the
    forecast day, epoch milliseconds.
    """
    h1, h7, h14 = (str(h) for h in HORIZONS)
    s1, s2, s3, s4 = STAGES
    out = []
    for i, key in enumerate(keys):
        f = flat[i]
        p = probs[i]
        sku = key.decode()
        m = models[i]
        cold = i in cold_rows
        # Literal dicts, not comprehensions: this loop runs once per forecast.
        msg = {
            "schema_version": FORECAST_VERSION,
            "id": f"{sku}/{as_of}/{m['name']}:{m['version']}",
            "sku": sku,
            "as_of": as_of,
            "active": active[i],
            "horizons": {
                h1: {"p10": f[0], "p50": f[1], "p90": f[2]},
                h7: {"p10": f[3], "p50": f[4], "p90": f[5]},
                h14: {"p10": f[6], "p50": f[7], "p90": f[8]},
            },
            "stage": STAGES[stages[i]],
            "stage_probs": {s1: p[0], s2: p[1], s3: p[2], s4: p[3]},
            "model": m,
            "calibrated": calibrated and not cold,
            "observed": observed[i],
        }
        if cold:
            msg["cold_start"] = True
        out.append((key, orjson.dumps(msg)))
    return out
