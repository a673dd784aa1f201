"""``trendcast bench --part scaling`` on the embedded broker: each size measured on its own, the section written."""

from __future__ import annotations

from stream_app.cli.bench_scaling import run_scaling


def test_each_size_is_measured_by_a_worker_of_its_own_and_the_curve_is_written(make_run, tmp_path):
    report = tmp_path / "BENCHMARKS.md"
    rows = run_scaling(make_run().settings, sizes=[200, 600], events_per_sku=3, days=3, output=report)

    # Every SKU gets an event, and each size's worker reads only its own topics: 600, not 800.
    assert [r["skus_tracked"] for r in rows] == [200, 600]
    for r in rows:
        assert r["events"] == 3 * r["skus"]
        assert r["worker_rate"] > 0 and r["raw_rate"] > 0
        # two of the three days close, and every active SKU is forecast at each
        assert r["forecasts"] >= r["skus"]
        assert r["tick_s"] > 0 and r["rss_growth"] != 0
    text = report.read_text()
    assert "--part scaling --scaling-skus 200,600 --events-per-sku 3 --days 3" in text
    assert text.count("<!-- bench:scaling -->") == 1
    body = text.split("<!-- bench:scaling -->")[1]
    assert "| 200 | 600 |" in body and "| 600 | 1,800 |" in body
