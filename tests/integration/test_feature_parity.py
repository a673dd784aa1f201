"""Feature parity: the model input built from a real worker's windows equals the one built offline.

A stream replayed through a real worker on the embedded broker, and the
same event files aggregated offline (:mod:`stream_app.data.samples` and :mod:`models.panel`, the training
path): at the last day of the data, :func:`stream_app.core.features.features_from_batch`
over the worker's windows (read back from its changelog) and
:func:`models.panel.features_at` over the offline panel give the same
arrays, SKU by SKU, to the last bit.
"""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from kafka_helpers import produce, read_topic, wait_for
from test_parity import held_buckets, sim_files, uci_files

from models.panel import features_at
from stream_app.data.samples import panel_from_series
from stream_app.cli.datacli import worker_rules
from stream_app.data.eventfiles import event_files, merged
from stream_app.core.features import features_from_batch
from stream_app.data.offline import aggregate_files
from stream_app.core.windows import H_HEAD_DAY, NO_DAY, StateBatch, WindowSpec

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("make_files", [uci_files, sim_files], ids=["uci-sample", "simulator"])
def test_features_from_the_stream_equal_features_built_offline(make_run, tmp_path, make_files):
    run = make_run()
    folder = make_files(tmp_path / "events")
    series = aggregate_files(folder, worker_rules(run.settings))
    want = series.window(run.settings.history_days).rows()
    topic = {k: run.topic(k) for k in ("clicks", "carts", "orders", "catalog")}
    run.start_worker()
    produce(run.bootstrap, [(topic[k], v["sku"].encode(), orjson.dumps(v))
                            for k, v in merged(event_files(folder).values())])
    wait_for(lambda: held_buckets(run) == want, 90, "the worker to hold every event", on_fail=run.logs)

    spec = WindowSpec(run.settings.history_days, run.settings.dedup_ids_per_sku)
    windows = {m.key.decode(): spec.load(m.value) for m in read_topic(run.bootstrap, run.windows_changelog)}
    windows = {k: w for k, w in windows.items() if w.header[H_HEAD_DAY] != NO_DAY}
    panel = panel_from_series(series)
    as_of = panel.last_day
    skus = sorted(windows)
    assert skus == sorted(panel.skus)
    online = features_from_batch(StateBatch(bytearray(b"".join(bytes(windows[s].buf) for s in skus)), spec), as_of)
    offline = features_at(panel, as_of, run.settings.history_days, rows=np.array([panel.skus.index(s) for s in skus]))

    assert online.history.any() and online.history.shape[1] == 6
    assert online.history[:, 5].any()  # order lines: the same on both sides, and not all zero
    np.testing.assert_array_equal(online.history, offline.history)
    np.testing.assert_array_equal(online.days_since_first_sale, offline.days_since_first_sale)
    np.testing.assert_array_equal(online.as_of_weekday, offline.as_of_weekday)
    assert online.spec_version == offline.spec_version and online.as_of_day == offline.as_of_day
    np.testing.assert_array_equal(online.has_text, offline.has_text)  # no embeddings on either side here
