"""The results: medians over the repeats, the ratios against the targets, markdown and a PNG plot."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bench.ingest import FASTAPI, HALF_RATE_CASE, SLUICE, IngestRow
from bench.runner import Measurement, Startup
from bench.workload import median_run

__all__ = ["Summary", "Target", "markdown", "plot", "summarize", "update_readme"]

#: Rows of the table, in order: (scenario, contender as the processes report it).
ROWS = (
    ("producer", "naive pika"), ("producer", "tuned raw pika"), ("producer", "sluice"),
    ("consumer", "naive pika"), ("consumer", "tuned raw pika"), ("consumer", "sluice"),
    ("consumer", "FastStream"), ("consumer", "Celery"),
    ("end to end", "naive pika"), ("end to end", "tuned raw pika"), ("end to end", "sluice"),
)
DESCRIPTIONS = {
    ("producer", "naive pika"): "BlockingConnection, one confirm round trip per publish",
    ("producer", "tuned raw pika"): "SelectConnection, 1000 confirms outstanding",
    ("producer", "sluice"): "EventPublisher: schema check, encode, window 1000",
    ("consumer", "naive pika"): "prefetch 1, ack each",
    ("consumer", "tuned raw pika"): "prefetch 300, ack every 50 (multiple)",
    ("consumer", "sluice"): "Worker: decode, schema validation, null sink, ack after sink",
    ("consumer", "FastStream"): "no-op handler, body as dict, prefetch 300",
    ("consumer", "Celery"): "solo pool, acks_late, no-op task, prefetch 300",
    ("end to end", "naive pika"): "1 producer, 2 consumers",
    ("end to end", "tuned raw pika"): "1 producer, 2 consumers",
    ("end to end", "sluice"): "1 producer, 2 consumers",
}
README_BEGIN, README_END = "<!-- bench:begin -->", "<!-- bench:end -->"


@dataclass(frozen=True)
class Target:
    """One goal: what is compared, the measured value, and whether it is met."""

    name: str
    value: float | None
    goal: str
    met: bool | None  # None: not measured in this run


@dataclass
class Summary:
    """Medians by (scenario, contender, queue type), the targets, and the run's conditions."""

    medians: dict[tuple[str, str, str], Measurement]
    all: list[Measurement]
    targets: list[Target]
    startup: Startup | None
    conditions: str
    ingest: list[IngestRow] = field(default_factory=list)


def summarize(measurements: Iterable[Measurement], startup: Startup | None, conditions: str,
              ingest: Iterable[IngestRow] = ()) -> Summary:
    """Group the repeats, take medians and check every target (the ingest's too, when measured)."""
    groups: dict[tuple[str, str, str], list[Measurement]] = {}
    for m in measurements:
        groups.setdefault((m.scenario, m.contender, m.queue_type), []).append(m)
    # The repeat with the median rate: its CPU, RSS and latency come with it.
    medians = {key: median_run(rows, lambda m: m.rate) for key, rows in groups.items()}
    rows = list(ingest)
    targets = _targets(medians, startup) + (_ingest_targets(rows) if rows else [])
    return Summary(medians, [m for rows in groups.values() for m in rows], targets, startup, conditions, rows)


def _ingest_targets(rows: list[IngestRow]) -> list[Target]:
    def row(contender: str, case: str) -> IngestRow | None:
        return next((r for r in rows if r.contender == contender and r.case == case), None)

    def ratio(case: str, rate: Callable[[IngestRow], float]) -> float | None:
        ours, theirs = row(SLUICE, case), row(FASTAPI, case)
        return rate(ours) / rate(theirs) if ours and theirs else None

    def target(name: str, value: float | None, goal: str, met: Callable[[float], bool]) -> Target:
        return Target(name, value, goal, None if value is None else met(value))

    half, wide = row(SLUICE, HALF_RATE_CASE), row(SLUICE, "single, 64 connections")
    return [
        target("ingest: sluice / FastAPI, single events, 16 kept-alive connections (quorum)",
               ratio("single, 16 connections", lambda r: r.requests_per_s), "≥ 1.3×", lambda v: v >= 1.3),
        target("ingest: sluice / FastAPI, events/s in batches of 100 (quorum)",
               ratio("batches of 100, 16 connections", lambda r: r.events_per_s), "≥ 2×", lambda v: v >= 2),
        target("ingest: sluice p99 at half its maximum, 16 connections (quorum)", half.p99_ms if half else None,
               "≤ 20 ms", lambda v: v <= 20),
        target("ingest: sluice socket errors + non-2xx answers at 64 connections",
               None if wide is None else wide.socket_errors + wide.non_2xx, "= 0", lambda v: v == 0),
    ]


def _targets(medians: dict[tuple[str, str, str], Measurement], startup: Startup | None) -> list[Target]:
    def ratio(scenario: str, other: str, queue_type: str) -> float | None:
        ours, theirs = medians.get((scenario, "sluice", queue_type)), medians.get((scenario, other, queue_type))
        return ours.rate / theirs.rate if ours and theirs else None

    def at_least(name: str, value: float | None, goal: float) -> Target:
        return Target(name, value, f"≥ {goal:g}×", None if value is None else value >= goal)

    def at_most(name: str, value: float | None, goal: float, unit: str) -> Target:
        return Target(name, value, f"≤ {goal:g} {unit}", None if value is None else value <= goal)

    targets = []
    queue_types = sorted({k[2] for k in medians}, key=lambda q: q != "quorum")
    for qt in queue_types:
        targets += [
            at_least(f"producer: sluice / naive ({qt})", ratio("producer", "naive pika", qt), 10),
            at_least(f"producer: sluice / tuned raw pika ({qt})", ratio("producer", "tuned raw pika", qt), 0.8),
            at_least(f"consumer: sluice / FastStream ({qt})", ratio("consumer", "FastStream", qt), 1.5),
            at_least(f"consumer: sluice / Celery ({qt})", ratio("consumer", "Celery", qt), 3),
            at_least(f"consumer: sluice / tuned raw pika ({qt}, stretch)", ratio("consumer", "tuned raw pika", qt), 0.7),
        ]
    targets += [
        at_least("end to end: sluice / naive (quorum)", ratio("end to end", "naive pika", "quorum"), 8),
        at_least("end to end: sluice / tuned raw pika (quorum)", ratio("end to end", "tuned raw pika", "quorum"), 0.6),
    ]
    latency = medians.get(("latency", "sluice", "quorum"))
    targets.append(at_most("p99 publish-to-sink at half of sluice's maximum (quorum)",
                           latency.p99_ms if latency else None, 50, "ms"))
    targets.append(at_most("consumer service peak RSS at prefetch 500", startup.rss_mib if startup else None, 80, "MiB"))
    targets.append(at_most("consumer service ready after start (broker up)", startup.ready_s if startup else None, 2, "s"))
    return targets


def _fmt(value: float | None, fmt: str = "{:,.0f}") -> str:
    return "—" if value is None else fmt.format(value)


def markdown(summary: Summary) -> str:
    """The results as markdown: throughput table, targets table, latency and start-up."""
    queue_types = sorted({k[2] for k in summary.medians}, key=lambda q: q != "quorum")
    lines = [summary.conditions, ""]
    head = " | ".join(f"{qt} msgs/s" for qt in queue_types)
    lines += [f"| scenario | contender | how | {head} | CPU s / 10k msgs | peak RSS MiB |",
              "|---|---|---|" + "---:|" * (len(queue_types) + 2)]
    for scenario, contender in ROWS:
        cells = [summary.medians.get((scenario, contender, qt)) for qt in queue_types]
        first = next((c for c in cells if c), None)
        if first is None:
            continue
        rates = " | ".join(_fmt(c.rate if c else None) for c in cells)
        lines.append(f"| {scenario} | {contender} | {DESCRIPTIONS[(scenario, contender)]} | {rates} | "
                     f"{first.cpu_per_10k:.2f} | {first.rss_mib:.0f} |")
    lines += ["", "CPU and RSS are for the first queue type; end to end they add up (CPU) or take the largest "
              "(RSS) over the producer and both consumers.", ""]
    for qt in queue_types:
        latency = summary.medians.get(("latency", "sluice", qt))
        if latency:
            lines.append(f"- sluice publish-to-sink latency ({qt}), 1 producer paced at "
                         f"{latency.extra.get('target_rate', latency.rate):,.0f} msgs/s (half its end-to-end maximum), "
                         f"2 consumers: p50 {_fmt(latency.p50_ms, '{:.1f}')} ms, p99 {_fmt(latency.p99_ms, '{:.1f}')} ms.")
    requeued = sum(m.extra.get("requeued", 0) for m in summary.all if m.contender == "Celery")
    if requeued:
        lines.append(f"- Celery: {requeued} message(s) ran but came back to the queue after its warm shutdown "
                     "(acks missing); counted once, removed between runs.")
    if summary.startup:
        s = summary.startup
        lines.append(f"- `python -m sluice_consumer` at prefetch 500: ready {s.ready_s:.2f} s after start (broker up), "
                     f"peak RSS {s.rss_mib:.0f} MiB after draining {s.messages:,} messages.")
    lines += _ingest_markdown(summary.ingest)
    lines += ["", "| target | measured | goal | met |", "|---|---:|---|---|"]
    for t in summary.targets:
        value = _fmt(t.value, "{:.3g}")  # 0.596 must not print as 0.60 next to a "no"
        lines.append(f"| {t.name} | {value} | {t.goal} | {'—' if t.met is None else 'yes' if t.met else '**no**'} |")
    return "\n".join(lines) + "\n"


def _ingest_markdown(rows: list[IngestRow]) -> list[str]:
    if not rows:
        return []
    repeats = max(r.repeats for r in rows)
    lines = ["", "`POST /events` over kept-alive connections (wrk; one quorum queue; 202 only after the broker's "
             f"confirm; median of {repeats} runs each, the contenders taking turns; errors: all runs added up):", "",
             "| case | contender | requests/s | events/s | p50 ms | p99 ms | socket errors | non-2xx |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        case = r.case if r.offered_rate is None else f"{r.case} ({r.offered_rate:,.0f} requests/s offered)"
        lines.append(f"| {case} | {r.contender} | {r.requests_per_s:,.0f} | {r.events_per_s:,.0f} | {r.p50_ms:.1f} | "
                     f"{r.p99_ms:.1f} | {r.socket_errors} | {r.non_2xx} |")
    return lines


def plot(summary: Summary, path: Path) -> None:
    """A bar chart of the throughput table, one bar per queue type."""
    import matplotlib

    matplotlib.use("Agg")  # no display: write the file only
    import matplotlib.pyplot as plt

    queue_types = sorted({k[2] for k in summary.medians}, key=lambda q: q != "quorum")
    rows = [r for r in ROWS if any((r[0], r[1], qt) in summary.medians for qt in queue_types)]
    fig, ax = plt.subplots(figsize=(11, 5))
    width = 0.8 / max(len(queue_types), 1)
    for i, qt in enumerate(queue_types):
        values = [summary.medians[(s, c, qt)].rate if (s, c, qt) in summary.medians else 0 for s, c in rows]
        bars = ax.bar([x + i * width for x in range(len(rows))], values, width, label=f"{qt} queue")
        for bar, contender in zip(bars, rows, strict=True):
            if contender[1] == "sluice":
                bar.set_edgecolor("black")
                bar.set_linewidth(1.5)
    ax.set_xticks([x + width * (len(queue_types) - 1) / 2 for x in range(len(rows))])
    ax.set_xticklabels([f"{s}\n{c}" for s, c in rows], fontsize=7)
    ax.set_ylabel("messages / s (median)")
    ax.set_title("sluice next to naive pika, tuned raw pika, FastStream and Celery (persistent, confirms, manual acks)",
                 fontsize=9)
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def update_readme(readme: Path, text: str, link: str) -> bool:
    """Replace the README's block between the bench markers; False when the markers are missing."""
    content = readme.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(README_BEGIN) + r".*?" + re.escape(README_END), re.S)
    if not pattern.search(content):
        return False
    block = f"{README_BEGIN}\n{text}\nDetails and plot: [{link}]({link}).\n{README_END}"
    readme.write_text(pattern.sub(lambda _m: block, content), encoding="utf-8")
    return True


