"""The chaos table: per fault, rounds, events, lost, duplicates and recovery time."""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path

from sluice_testing.chaos.round import RoundResult

__all__ = ["publish", "table"]


def table(results: Sequence[RoundResult]) -> str:
    """A Markdown table of ``results``, one row per fault plus a total, in the order faults first ran."""
    rows = ["| fault | rounds | events confirmed | not confirmed (503) | lost | duplicates | recovery s (median / max) |",
            "|---|---:|---:|---:|---:|---:|---|"]
    faults = list(dict.fromkeys(r.fault for r in results))
    for fault in faults:
        rounds = [r for r in results if r.fault == fault]
        rows.append(_row(fault, rounds))
    if len(faults) > 1:
        rows.append(_row("**all**", list(results)))
    return "\n".join(rows)


def publish(results: Sequence[RoundResult], write_line: Callable[[str], None]) -> None:
    """Write the table of ``results`` with ``write_line``, and to the file ``CHAOS_REPORT`` names if set."""
    if not results:
        return
    text = table(results)
    write_line(text)
    if os.environ.get("CHAOS_REPORT"):
        Path(os.environ["CHAOS_REPORT"]).write_text(text + "\n")


def _row(name: str, rounds: Sequence[RoundResult]) -> str:
    events = sum(r.accounting.events for r in rounds)
    unconfirmed = sum(r.accounting.unconfirmed for r in rounds)
    lost = sum(len(r.accounting.lost) for r in rounds)
    duplicates = sum(r.accounting.duplicates for r in rounds)
    times = [r.recovery_s for r in rounds if r.recovery_s is not None]
    unrecovered = len(rounds) - len(times)
    recovery = f"{statistics.median(times):.1f} / {max(times):.1f}" if times else "-"
    if unrecovered:
        recovery += f" ({unrecovered} not recovered)"
    return f"| {name} | {len(rounds)} | {events} | {unconfirmed} | {lost} | {duplicates} | {recovery} |"
