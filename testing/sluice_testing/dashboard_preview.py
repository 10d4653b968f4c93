"""``make dashboard-preview``: the dashboard's main panels, drawn from a local run, as PNG files.

    python -m sluice_testing.dashboard_preview --out docs/img --seconds 120

Runs the same stack as the observability test (RabbitMQ 4.x, a producer, two consumers, a flaky
webhook, a real Prometheus scraping them through the chart's ServiceMonitor settings) through four
phases: steady traffic, a slow sink (the backlog and latency grow), a sink outage (retries, then
dead letters as max_attempts) and recovery. Then it runs each panel's queries over the run through
Prometheus' range API and draws them with matplotlib, one PNG per panel.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402 - after choosing the backend

from sluice_testing.broker import start_broker  # noqa: E402
from sluice_testing.observability import PipelineRun, grafana_expr  # noqa: E402

#: The panels drawn, by dashboard title, and the file each goes to.
PANELS = {
    "Events per second": "throughput.png",
    "Queue depth": "queue-depth.png",
    "Dead letters by reason": "dead-letters.png",
    "Processing latency by sink": "processing-latency.png",
    "Publish confirm latency": "confirm-latency.png",
    "In flight": "in-flight.png",
}
#: Share of the run spent in each phase: (name, share, sink failure ratio, sink delay in seconds, outage).
PHASES = (("steady", 0.3, 0.1, 0.0, False), ("slow sink", 0.2, 0.1, 1.0, False),
          ("sink outage", 0.15, 0.1, 0.0, True), ("recovery", 0.35, 0.1, 0.0, False))
_UNITS = {"ops": "per second", "s": "seconds", "bytes": "bytes", "short": ""}


def _legend(fmt: str, metric: dict[str, str], prefix: str) -> str:
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: metric.get(m.group(1), ""), fmt)
    # Show queues under the chart's default prefix rather than the run's random one.
    return text.replace(prefix + ".", "sluice.") or "value"


def _drive(run: PipelineRun, seconds: float) -> list[tuple[str, float, float]]:
    """Run the phases; returns (name, start, end) of each, in Unix time."""
    spans = []
    for name, share, fail_ratio, delay, outage in PHASES:
        run.sink.fail_ratio, run.sink.delay_s, run.sink.status = fail_ratio, delay, (500 if outage else None)
        start = time.time()
        if name == "steady":
            run.publish_invalid(10)
        print(f"{name} for {seconds * share:.0f}s...", flush=True)
        time.sleep(seconds * share)
        spans.append((name, start, time.time()))
    run.sink.delay_s, run.sink.status = 0.0, None
    return spans


def _draw(run: PipelineRun, panel: dict[str, Any], spans: list[tuple[str, float, float]], path: Path) -> int:
    start, end = spans[0][1], spans[-1][2]
    fig, ax = plt.subplots(figsize=(8, 3.2), dpi=100)
    lines = 0
    for target in panel["targets"]:
        for series in run.prometheus.query_range(grafana_expr(target["expr"]), start=start, end=end, step=2):
            metric = series["metric"]
            if "queue" in metric and not metric["queue"].startswith(run.prefix):
                continue  # another user's queue on a shared broker
            points = [(float(t) - start, float(v)) for t, v in series["values"] if not math.isnan(float(v))]
            if points:
                ax.plot(*zip(*points, strict=True), label=_legend(target["legendFormat"], metric, run.prefix))
                lines += 1
    for name, phase_start, phase_end in spans[1:3]:
        ax.axvspan(phase_start - start, phase_end - start, alpha=0.12, color="grey")
        ax.text((phase_start + phase_end) / 2 - start, 0.97, name, transform=ax.get_xaxis_transform(),
                ha="center", va="top", fontsize=8, color="dimgrey")
    ax.set_title(panel["title"], loc="left", fontsize=11)
    ax.set_xlabel("seconds into the run", fontsize=8)
    ax.set_ylabel(_UNITS.get(panel["fieldConfig"]["defaults"].get("unit", "short"), ""), fontsize=8)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
    if lines:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/img"), help="directory of the PNG files")
    parser.add_argument("--seconds", type=float, default=120.0, help="length of the traffic run")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    print("Starting RabbitMQ 4.x (scripts/rabbitmq.sh start sluice-demo), the services and Prometheus...", flush=True)
    broker = start_broker("sluice-demo")
    with PipelineRun(broker, rate=40, fail_ratio=0.1) as run:
        spans = _drive(run, args.seconds)
        time.sleep(5)  # the last scrapes of the run
        panels = {p["title"]: p for p in run.monitoring.dashboard["panels"] if p["type"] != "row"}
        empty = []
        for title, filename in PANELS.items():
            if not _draw(run, panels[title], spans, args.out / filename):
                empty.append(title)
            print(f"wrote {args.out / filename}", flush=True)
    if empty:
        print(f"panels without data: {', '.join(empty)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
