from stream_app.cli.bench import write_section


def test_each_bench_part_rewrites_only_its_own_section(tmp_path):
    report = tmp_path / "BENCHMARKS.md"
    write_section(report, "worker", "## Worker\n\nold figures")
    write_section(report, "scoring-cpu", "## Scoring\n\n100 SKUs/s")
    write_section(report, "worker", "## Worker\n\nnew figures\n")
    text = report.read_text()
    assert text.startswith("# Benchmarks\n")
    assert "old figures" not in text and text.count("new figures") == 1 and "100 SKUs/s" in text
    assert text.index("<!-- bench:worker -->") < text.index("<!-- bench:scoring-cpu -->")  # kept in place
    assert text.count("<!-- bench:worker -->") == text.count("<!-- /bench:worker -->") == 1
