"""docs/metrics.md lists every metric of sluice_common.metrics, with its type and labels, and no other."""

from __future__ import annotations

import re

from prometheus_client.metrics import MetricWrapperBase

from sluice_common import metrics
from sluice_testing.broker import REPO

DOC = REPO / "docs" / "metrics.md"
#: What each prometheus_client type is exposed as.
_SUFFIX = {"counter": "_total", "histogram": "", "gauge": "", "info": "_info"}


def _code_metrics() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Exposed name -> (type, label names) of every metric metrics.py defines."""
    found = {}
    for name in metrics.__all__:
        collector = getattr(metrics, name)
        if not isinstance(collector, MetricWrapperBase):
            continue
        kind = collector._type  # noqa: SLF001 - prometheus_client keeps the type and labels private
        labels = tuple(collector._labelnames)  # noqa: SLF001
        if kind == "info":
            # An Info's labels are the keys the services pass to .info(); both pass the same ones.
            sources = (REPO / "services").glob("*/src/*/__main__.py")
            keys = {k for path in sources for k in re.findall(r'BUILD_INFO\.info\(\{"(\w+)"', path.read_text())}
            labels = tuple(sorted(keys))
        found[collector._name + _SUFFIX[kind]] = (kind, labels)  # noqa: SLF001
    return found


def _doc_metrics() -> dict[str, tuple[str, tuple[str, ...]]]:
    text = DOC.read_text()
    table = text[text.index("<!-- BEGIN sluice metrics -->"):text.index("<!-- END sluice metrics -->")]
    found = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`sluice_"):
            name, kind, labels, meaning = cells
            assert meaning, f"{name} has no meaning in docs/metrics.md"
            found[name.strip("`")] = (kind, tuple(re.findall(r"`(\w+)`", labels)))
    return found


def test_docs_list_every_metric_with_its_type_and_labels():
    code, doc = _code_metrics(), _doc_metrics()
    assert len(code) >= 10, sorted(code)  # the scan sees the registry
    assert doc == code


def test_the_doc_parser_reads_the_table():
    # Given the known build info row, Then it is parsed with its type and label
    assert _doc_metrics()["sluice_build_info"] == ("info", ("version",))
