"""What ``sluice publish`` reports: the tally, the summary (text and JSON) and the progress line."""

from __future__ import annotations

import io
import json

import pytest

from sluice_common.envelope import Event, InvalidEvent, OutgoingMessage
from sluice_common.errors import PublishError
from sluice_producer import cli
from sluice_producer.publisher import PublishResult
from sluice_producer.report import Progress, Tally, progress_line


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class UnroutablePublisher:
    """Follows ``EventPublisher``'s contract: ``check`` refuses data without "value", and every
    event of type ``nowhere`` comes back returned."""

    def check(self, event: Event) -> OutgoingMessage:
        if "value" not in event.data:
            raise InvalidEvent(["data: 'value' is a required property"])
        return OutgoingMessage("sluice.events", event.type, event.id.encode(), event.id, {})

    def publish(self, messages: list[OutgoingMessage]) -> list[PublishResult]:
        return [PublishResult(m.message_id, PublishError("returned", f"no queue is bound for routing key {m.routing_key!r}")
                              if m.routing_key == "nowhere" else None) for m in messages]


def test_tally_counts_every_failure_by_reason_but_keeps_only_the_first_few():
    # Given a tally keeping 5 failures
    tally = Tally(keep=5, clock=Clock())
    # When 12 events fail for two reasons and 3 are confirmed
    for line in range(1, 13):
        tally.fail("returned" if line % 3 else "invalid_json", f"error {line}", line=line, event_id=f"e-{line}")
    tally.confirmed = 3
    # Then all are counted, by reason, and only the first 5 are kept whole
    assert tally.failed == 12 and tally.done == 15
    assert dict(tally.by_reason) == {"returned": 8, "invalid_json": 4}
    assert [f.line for f in tally.first_failures] == [1, 2, 3, 4, 5]


def test_summary_json_has_every_documented_field():
    # Given 2 s of publishing: 8 confirmed, 2 returned
    clock = Clock()
    tally = Tally(clock=clock)
    tally.published, tally.confirmed = 10, 8
    tally.fail("returned", "returned: no queue", line=4, event_id="e-4")
    tally.fail("returned", "returned: no queue", line=9, event_id="e-9")
    clock.now += 2.0
    # When it is summarised as JSON
    summary = json.loads(json.dumps(tally.summary().as_dict()))
    # Then every field documented in --help is there, with its value
    assert summary == {
        "published": 10, "confirmed": 8, "failed": 2, "by_reason": {"returned": 2},
        "first_failures": [{"line": 4, "id": "e-4", "reason": "returned", "error": "returned: no queue"},
                           {"line": 9, "id": "e-9", "reason": "returned", "error": "returned: no queue"}],
        "seconds": 2.0, "rate": 5.0,
    }
    assert set(summary) <= set(word for line in cli.EPILOG.splitlines() for word in line.split()[:1])


def test_summary_text_names_counts_by_reason_and_at_most_the_first_few_failures():
    # Given 1,000 failed lines, all invalid JSON
    tally = Tally(clock=Clock())
    for line in range(1, 1001):
        tally.fail("invalid_json", "not JSON: Expecting value", line=line)
    # When it is rendered for people
    text = tally.summary().as_text()
    # Then the count and reason are on one line, and only 5 lines name an event
    assert "1,000  not valid JSON [invalid_json]" in text
    assert sum(1 for line in text.splitlines() if line.strip().startswith("line ")) == 5
    assert "The first 5 failure(s):" in text and len(text.splitlines()) <= 10


def test_progress_line_shows_count_total_rate_and_failures():
    assert progress_line(12_000, 50_000, 3, 2.0) == "12,000/50,000 (24%)  6,000/s  3 failed"
    assert progress_line(500, None, 0, 0.5) == "500 events  1,000/s  0 failed"


def test_progress_redraws_at_most_ten_times_a_second_and_erases_itself():
    # Given a progress line on a terminal
    clock, stream = Clock(), Terminal()
    tally, progress = Tally(clock=clock), Progress(stream, 1000)
    # When it is updated 100 times in 0.99 s
    for _ in range(100):
        tally.confirmed += 10
        progress.update(tally)
        clock.now += 0.0099
    # Then it was drawn 10 times, and clearing it leaves the cursor on an empty line
    assert stream.getvalue().count("\r") == 10
    progress.clear()
    assert stream.getvalue().endswith("\r\x1b[K")


def test_progress_draws_nothing_off_a_terminal():
    stream = io.StringIO()
    progress = Progress(stream, None)
    progress.update(Tally(), force=True)
    progress.clear()
    assert not progress.enabled and stream.getvalue() == ""


def test_publish_tells_invalid_json_invalid_events_schema_violations_and_unroutable_events_apart():
    # Given one line of each kind, and one that is confirmed
    lines = ["not json", '{"type": "sensor.reading"}', '{"type": "sensor.reading", "data": {}, "id": "bad"}',
             '{"type": "nowhere", "data": {"value": 1}, "id": "lost"}', "",
             '{"type": "sensor.reading", "data": {"value": 1}, "id": "ok"}']
    # When they are published
    summary = cli.publish(io.StringIO("\n".join(lines)), UnroutablePublisher(),  # type: ignore[arg-type]
                          tally=Tally(), progress=Progress(io.StringIO(), None))
    # Then each failure has its reason, its line number and, where known, its id
    assert (summary.published, summary.confirmed, summary.failed) == (2, 1, 4)
    assert summary.by_reason == {"invalid_json": 1, "invalid_event": 1, "schema_violation": 1, "returned": 1}
    assert [(f.line, f.event_id, f.reason) for f in summary.first_failures] == [
        (1, None, "invalid_json"), (2, None, "invalid_event"), (3, "bad", "schema_violation"), (4, "lost", "returned")]


@pytest.mark.parametrize("variable, value", [("SLUICE_PUBLISH_TIMEOUT_SECONDS", "soon"),
                                             ("SLUICE_AMQP_URL", "http://broker"),
                                             ("SLUICE_SCHEMA_DIR", "/nonexistent")])
def test_a_bad_setting_exits_2_naming_it(monkeypatch, capsys, tmp_path, variable, value):
    # Given a bad SLUICE_* setting
    monkeypatch.setenv(variable, value)
    events = tmp_path / "events.jsonl"
    events.write_text("{}\n")
    # When `sluice publish` runs, Then it exits 2 before connecting, naming the setting
    assert cli.main(["publish", str(events)]) == cli.EXIT_CONFIG
    err = capsys.readouterr().err
    assert err.startswith("sluice: configuration error: ") and variable in err
