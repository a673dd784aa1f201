"""A real worker watched by a real Prometheus server, and consumer lag against what the broker reports.

The Prometheus test starts the Debian `prometheus` binary on 127.0.0.1 with
deploy/prometheus/prometheus.yml (its scrape target pointed at the test's
worker, a 1 s scrape interval) and the real alert rules, produces a known set
of events, and reads the series back through Prometheus's HTTP API.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import orjson
import pytest
import yaml
from kafka_helpers import produce, wait_for

from stream_app.core.partitioning import partition_for
from stream_app.worker.broker import free_port
from stream_app.worker.lag import LagProbe

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = shutil.which("prometheus")
DAY = 86_400_000
D0 = 20_000  # 2024-10-04


def test_lag_is_end_offset_minus_committed_as_the_broker_reports_them(broker):
    """Ten messages in one producer batch and ten in ten batches, the group committed at offset 4 on both.

    Apache Kafka would report end offset 10 for both. The embedded broker
    reports the first offset of the last batch + 1: 10 for the ten batches,
    1 for the single batch, where lag therefore reads 0 (the documented limitation).
    """
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.structs import OffsetAndMetadata

    from stream_app.worker.kafka_io import ensure_topics

    one, many, group = f"lag-one-{time.time_ns()}", f"lag-many-{time.time_ns()}", f"lag-g-{time.time_ns()}"

    async def run():
        await ensure_topics(broker.bootstrap, {one: 1, many: 1})
        p = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=50)
        await p.start()
        try:
            await asyncio.gather(*[await p.send(one, b"x") for _ in range(10)])
            for _ in range(10):
                await (await p.send(many, b"y"))
        finally:
            await p.stop()
        c = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group, enable_auto_commit=False)
        await c.start()
        try:
            tps = [TopicPartition(one, 0), TopicPartition(many, 0)]
            c.assign(tps)
            await c.commit({tp: OffsetAndMetadata(4, "") for tp in tps})
            reported = await c.end_offsets(tps)  # ListOffsets, asked independently of the probe
        finally:
            await c.stop()
        probe = LagProbe(broker.bootstrap, group)
        try:
            ends, committed = await probe.read([(one, 0), (many, 0)])
            lags = await probe.lags([(one, 0), (many, 0)])
        finally:
            await probe.close()
        return {(tp.topic, tp.partition): v for tp, v in reported.items()}, ends, committed, lags

    reported, ends, committed, lags = asyncio.run(run())
    assert ends == reported
    assert committed == {(one, 0): 4, (many, 0): 4}
    assert ends[(many, 0)] == 10 and lags[(many, 0)] == 6
    assert ends[(one, 0)] == 1 and lags[(one, 0)] == 0  # under-reported end offset: lag reads low


def test_lag_in_seconds_is_the_record_time_between_the_newest_record_and_the_newest_applied(broker):
    """Ten records ten seconds apart (one batch each): the probe reads the two timestamps it needs from the broker.

    Committed at 4: behind by records 4-9, the newest applied is record 3,
    so 90 - 30 = 60 s. The worker's own newest (record 6) beats the commit:
    30 s. Nothing committed: measured from the oldest record, 90 s.
    Committed at the end: 0.
    """
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.structs import OffsetAndMetadata

    from stream_app.worker.kafka_io import ensure_topics
    from stream_app.worker.lag import positions

    topic, group, t0 = f"lag-s-{time.time_ns()}", f"lag-sg-{time.time_ns()}", 1_700_000_000_000
    tp = (topic, 0)

    async def run():
        await ensure_topics(broker.bootstrap, {topic: 1})
        p = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
        await p.start()
        try:
            for i in range(10):
                await p.send_and_wait(topic, b"x", timestamp_ms=t0 + 10_000 * i)
        finally:
            await p.stop()
        probe = LagProbe(broker.bootstrap, group)
        try:
            ends, none = await probe.read([tp])
            fresh = await probe.seconds_behind(ends, positions(none, {}), {})
            c = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group, enable_auto_commit=False)
            await c.start()
            try:
                c.assign([TopicPartition(topic, 0)])
                await c.commit({TopicPartition(topic, 0): OffsetAndMetadata(4, "")})
                ends, committed = await probe.read([tp])
                at_commit = await probe.seconds_behind(ends, positions(committed, {}), {})
                mine = await probe.seconds_behind(ends, positions(committed, {tp: (6, t0 + 60_000)}),
                                                  {tp: t0 + 60_000})
                await c.commit({TopicPartition(topic, 0): OffsetAndMetadata(10, "")})
                ends, committed = await probe.read([tp])
                done = await probe.seconds_behind(ends, positions(committed, {}), {})
            finally:
                await c.stop()
        finally:
            await probe.close()
        return none, fresh, at_commit, mine, done

    none, fresh, at_commit, mine, done = asyncio.run(run())
    assert none == {tp: None}
    assert fresh == {tp: 90.0}
    assert at_commit == {tp: 60.0}
    assert mine == {tp: 30.0}
    assert done == {tp: 0.0}


def test_a_sasl_worker_facing_a_broker_without_sasl_stops_in_one_line_without_the_password(broker, tmp_path):
    import os
    import sys

    secret = "hunter2-secret"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRENDCAST_")}
    env.update(TRENDCAST_BROKER=broker.url, TRENDCAST_SECURITY_PROTOCOL="SASL_PLAINTEXT",
               TRENDCAST_SASL_MECHANISM="SCRAM-SHA-256", TRENDCAST_SASL_USERNAME="trendcast",
               TRENDCAST_SASL_PASSWORD=secret, TRENDCAST_CONNECT_TIMEOUT_S="2", TRENDCAST_METRICS_PORT="0",
               TRENDCAST_DATA_DIR=str(tmp_path))
    r = subprocess.run([sys.executable, "-m", "stream_app.cli", "worker"], env=env, capture_output=True, text=True,
                       timeout=60)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert "accepts SASL_PLAINTEXT with the configured credentials" in lines[0]
    assert secret not in r.stdout + r.stderr


def events(run) -> tuple[list, dict[str, int]]:
    """Valid orders and clicks over three days for 12 SKUs, plus malformed orders; and the count per topic."""
    msgs, counts = [], {}
    for kind, n in (("orders", 36), ("clicks", 24)):
        topic = run.topic(kind)
        for i in range(n):
            sku = f"P{i % 12:02d}"
            ts = (D0 + i * 3 // n) * DAY + 3_600_000 + i
            value = {"event_id": f"{kind}{i}", "sku": sku, "ts": ts}
            if kind == "orders":
                value.update(order_id=f"o{i}", qty=1 + i % 3, unit_price=2.5)
            msgs.append((topic, sku.encode(), orjson.dumps(value)))
        counts[topic] = n
    for i in range(3):
        msgs.append((run.topic("orders"), b"P00", b"{not json"))
    counts[run.topic("orders")] += 3
    return msgs, counts


class Prometheus:
    """A Prometheus server on 127.0.0.1 scraping one target every second, with the repository's alert rules."""

    def __init__(self, tmp_path: Path, target: str) -> None:
        config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
        config["global"].update(scrape_interval="1s", evaluation_interval="1s")
        config["rule_files"] = [str(ROOT / "deploy/prometheus" / f) for f in config["rule_files"]]
        job = next(j for j in config["scrape_configs"] if j["job_name"] == "trendcast")
        job["static_configs"] = [{"targets": [target]}]
        path = tmp_path / "prometheus.yml"
        path.write_text(yaml.safe_dump(config))
        self.port = free_port()
        self.log = tmp_path / "prometheus.log"
        with open(self.log, "wb") as f:
            self.proc = subprocess.Popen(
                [PROMETHEUS, f"--config.file={path}", f"--web.listen-address=127.0.0.1:{self.port}",
                 f"--storage.tsdb.path={tmp_path / 'tsdb'}"], stdout=f, stderr=f)

    def api(self, path: str, **params: str) -> object:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                body = json.loads(r.read())
        except (OSError, urllib.error.URLError):
            return None
        return body["data"] if body.get("status") == "success" else None

    def query(self, promql: str) -> dict[str, float]:
        """Instant query: ``{json of labels: value}`` of each series."""
        data = self.api("query", query=promql)
        if not data:
            return {}
        return {json.dumps(r["metric"], sort_keys=True): float(r["value"][1]) for r in data["result"]}

    def value(self, promql: str) -> float | None:
        vals = list(self.query(promql).values())
        return vals[0] if len(vals) == 1 else None

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@pytest.mark.skipif(PROMETHEUS is None, reason="PROMETHEUS BINARY NOT FOUND: apt-get install prometheus "
                                                "(CI installs it); the real-Prometheus test did NOT run")
def test_prometheus_scrapes_the_worker_and_gets_the_expected_series(make_run, tmp_path):
    run = make_run(lag_interval_s=1.0)
    worker = run.start_worker()
    worker.wait(lambda m: m.get("trendcast_ready", 0) == 1, 60)
    prom = Prometheus(tmp_path, f"127.0.0.1:{worker.port}")
    try:
        wait_for(lambda: prom.value('up{job="trendcast"}') == 1, 60, "Prometheus to scrape the worker",
                 on_fail=prom.logs)
        assert prom.value('trendcast_ready{job="trendcast"}') == 1

        msgs, counts = events(run)
        produce(run.bootstrap, msgs)
        by_topic = 'sum by (topic) (trendcast_events_consumed_total{job="trendcast"})'
        want = {json.dumps({"topic": t}): float(n) for t, n in counts.items()}
        wait_for(lambda: prom.query(by_topic) == want, 60, f"consumed events by topic {want}",
                 on_fail=lambda: f"{prom.query(by_topic)}\n{run.logs()}")

        assert prom.value('trendcast_events_invalid_total{reason="bad_json"}') == 3
        assert prom.value("sum(trendcast_events_applied_total)") == 60
        assert prom.value("trendcast_duplicates_dropped_total") == 0
        # Set when the state is flushed to the changelog (every flush_interval_s), so it may trail a scrape.
        wait_for(lambda: prom.value("trendcast_skus_tracked") == 12, 30, "12 SKUs tracked")
        info = prom.query("trendcast_build_info")
        assert len(info) == 1 and list(info.values()) == [1.0]
        assert json.loads(next(iter(info)))["version"] == "0.1.0"
        assert prom.value("count(trendcast_model_info == 1)") == 1

        # Lag: one series per assigned source partition (clicks, carts, orders, catalog).
        parts = run.settings.partitions
        wait_for(lambda: prom.value("count(trendcast_consumer_lag_messages)") == 4 * parts, 30,
                 "a lag series per source partition", on_fail=lambda: str(prom.query("trendcast_consumer_lag_messages")))
        # Once everything is consumed and committed, no partition is behind.
        wait_for(lambda: prom.value("sum(trendcast_consumer_lag_messages)") == 0, 30, "lag to reach 0")
        wait_for(lambda: prom.value("count(trendcast_consumer_lag_seconds)") == 4 * parts, 30,
                 "a lag-in-seconds series per source partition")
        wait_for(lambda: prom.value("sum(trendcast_consumer_lag_seconds)") == 0, 30, "lag in seconds to reach 0")
        # The events are from October 2024: the partition with the newest of them is that old now.
        newest_s = max(orjson.loads(v)["ts"] for _, _, v in msgs if v.startswith(b"{\"")) / 1000.0
        with_events = len({partition_for(k, parts) for _, k, v in msgs if v.startswith(b"{\"")})
        wait_for(lambda: prom.value("count(trendcast_event_time_lag_seconds)") == with_events, 30,
                 "an event-time lag series per partition with events")
        assert abs(prom.value("min(trendcast_event_time_lag_seconds)") - (time.time() - newest_s)) < 60

        # Days closed in event time produce forecasts; the histograms arrive with them.
        wait_for(lambda: (prom.value("sum(trendcast_forecasts_published_total)") or 0) > 0, 60, "forecasts")
        assert (prom.value("sum(trendcast_forecast_tick_duration_seconds_count)") or 0) >= 1
        assert prom.value("sum(trendcast_processing_latency_seconds_count)") >= 1
        ticks = [ln for ln in run.log.read_text().splitlines() if " tick partition=" in ln]
        assert ticks and all("seconds=" in ln and "skus=" in ln for ln in ticks)

        # The real server loaded the repository's alert rules, and none fires for this healthy worker.
        rules = prom.api("rules")
        names = {r["name"] for g in rules["groups"] for r in g["rules"]}
        assert "TrendcastWorkerDown" in names and len(names) == 10
        firing = [a["labels"]["alertname"] for a in prom.api("alerts")["alerts"] if a["state"] == "firing"]
        assert firing == []
    finally:
        prom.stop()

    for path, status in (("/healthz", 200), ("/readyz", 200)):
        with urllib.request.urlopen(f"http://127.0.0.1:{worker.port}{path}", timeout=5) as r:
            assert r.status == status
    assert json.loads(urllib.request.urlopen(f"http://127.0.0.1:{worker.port}/readyz").read()) == {
        "ready": True, "joined": True, "recovered": True, "model_serving": True, "broker_reachable": True,
        "forecaster": "model"}
