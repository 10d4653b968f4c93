"""``make bench`` in small: every contender moves every message and the table with its ratios comes out.

No performance is asserted here (the machine is shared); ``make bench`` measures.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import profile, report, runner
from sluice_testing.broker import Broker

N = 200


@pytest.mark.integration
@pytest.mark.slow
def test_every_contender_moves_every_message_and_the_table_has_every_ratio(rabbitmq: Broker, tmp_path: Path) -> None:
    # Given a tiny run on quorum queues, with the latency and start-up checks
    options = runner.Options(messages=N, repeats=1, queue_types=("quorum",))

    # When it runs
    measurements, startup = runner.run(rabbitmq, options, progress=lambda _line: None)
    summary = report.summarize(measurements, startup, "smoke run")
    text = report.markdown(summary)
    report.plot(summary, tmp_path / "throughput.png")

    # Then every scenario of every contender moved all its messages, and left no queue behind
    for scenario, contender in report.ROWS:
        row = summary.medians[(scenario, contender, "quorum")]
        assert row.moved == row.messages > 0, (scenario, contender)
        assert row.rate > 0 and row.cpu_per_10k > 0 and row.rss_mib > 0
        assert f"| {scenario} | {contender} |" in text
    latency = summary.medians[("latency", "sluice", "quorum")]
    assert latency.moved == latency.messages and latency.p99_ms is not None
    assert startup is not None and startup.ready_s > 0 and startup.rss_mib > 0
    prefixes = {m.extra["prefix"] for m in measurements}
    assert prefixes and not [p for p in prefixes if rabbitmq.queue_names(p)]
    # and every target has a measured value and a verdict in the table
    assert all(t.value is not None and t.met is not None for t in summary.targets if "classic" not in t.name)
    for target in summary.targets:
        if "classic" not in target.name:
            assert f"| {target.name} |" in text
    assert (tmp_path / "throughput.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_readme_block_is_replaced_between_its_markers_only(tmp_path: Path) -> None:
    # Given a README with a results block
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\n{report.README_BEGIN}\nold table\n{report.README_END}\n\n## next\n")

    # When the results are written into it
    assert report.update_readme(readme, "| new | table |", "docs/bench/results.md")

    # Then only the block changed
    content = readme.read_text()
    assert "old table" not in content and "| new | table |" in content
    assert content.startswith("# title\n\n") and content.endswith("\n\n## next\n")


def test_a_readme_without_markers_is_left_alone(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# title\n")
    assert not report.update_readme(readme, "table", "docs/bench/results.md")
    assert readme.read_text() == "# title\n"


def test_a_target_missed_is_marked_in_the_table() -> None:
    # Given a consumer slower than the tuned raw loop by more than the target allows
    rows = [
        runner.Measurement("consumer", "sluice", "quorum", 100, 100, 1000.0, 1.0, 40.0),
        runner.Measurement("consumer", "tuned raw pika", "quorum", 100, 100, 10000.0, 0.2, 40.0),
    ]

    # When summarized
    summary = report.summarize(rows, None, "synthetic")

    # Then the ratio is 0.1 and marked as not met; what was not measured has no verdict
    target = next(t for t in summary.targets if t.name == "consumer: sluice / tuned raw pika (quorum, stretch)")
    assert target.value == pytest.approx(0.1) and target.met is False
    assert "| consumer: sluice / tuned raw pika (quorum, stretch) | 0.1 | ≥ 0.7× | **no** |" in report.markdown(summary)
    assert next(t for t in summary.targets if "FastStream" in t.name).met is None


def test_the_profile_summary_counts_own_and_inclusive_samples() -> None:
    # Given two sampled stacks in py-spy's raw format
    raw = "main (a.py:1);work (a.py:5);json (b.py:2) 3\nmain (a.py:1);io (a.py:9) 1\n"

    # When summarized
    own, inclusive = profile.top_functions(raw, 10)

    # Then leaf frames own their samples and every frame counts those below it
    assert own[0] == (0.75, "json (b.py:2)") and (0.25, "io (a.py:9)") in own
    assert inclusive[0] == (1.0, "main (a.py:1)") and (0.75, "work (a.py:5)") in inclusive
