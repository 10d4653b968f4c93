"""The ingest rows of ``make bench`` in small: both contenders serve every case through wrk, and the table and
goal rows come out. No performance is asserted here (the machine is shared); ``make bench`` measures."""

from __future__ import annotations

import pytest

from bench import ingest, report
from sluice_testing.broker import Broker


@pytest.mark.integration
@pytest.mark.slow
def test_both_ingests_answer_every_case_and_the_goal_rows_are_computed(rabbitmq: Broker) -> None:
    # When every case runs for a second against each contender
    rows = ingest.run(rabbitmq, seconds=1)

    # Then each contender answered each case, every answer of the single connection a 202
    cases = {(r.contender, r.case) for r in rows}
    assert cases == {(c, case) for c in ingest.CONTENDERS for case, _, _ in ingest.CASES} | {
        (ingest.SLUICE, ingest.HALF_RATE_CASE)}
    for row in rows:
        assert row.requests_per_s > 0 and row.p99_ms >= row.p50_ms > 0, row
        if row.connections == 1:
            assert (row.socket_errors, row.non_2xx) == (0, 0), row
    batch = next(r for r in rows if r.batch == 100)
    assert batch.events_per_s == pytest.approx(batch.requests_per_s * 100)
    half = next(r for r in rows if r.case == ingest.HALF_RATE_CASE)
    assert half.offered_rate is not None and half.offered_rate > 0
    # and the summary has the ingest table and a measured value for every ingest goal
    summary = report.summarize([], None, "smoke run", rows)
    text = report.markdown(summary)
    assert "| single, 16 connections | FastAPI + aio-pika |" in text
    goals = [t for t in summary.targets if t.name.startswith("ingest:")]
    assert len(goals) == 4 and all(t.value is not None and t.met is not None for t in goals), goals
    # and nothing of the run is left on the broker
    assert not [q for q in rabbitmq.queue_names("benchingest")]


def test_a_case_shows_its_median_run_with_the_errors_of_every_run() -> None:
    # Given three runs of one case, the slowest of them with a socket error and a 503
    def run(rate: float, errors: int, non_2xx: int) -> ingest.IngestRow:
        return ingest.IngestRow("single, 16 connections", ingest.SLUICE, 16, 1, rate, 1.0, rate / 100,
                                errors, non_2xx)

    runs = [run(3000, 0, 0), run(1000, 1, 1), run(2000, 0, 0)]
    # When they are summarised
    row = ingest._median(runs, lambda r: r.requests_per_s)
    # Then the row is the median run by rate, and no failure is hidden by the median
    assert (row.requests_per_s, row.p99_ms) == (2000, 20)
    assert (row.socket_errors, row.non_2xx, row.repeats) == (1, 1, 3)
