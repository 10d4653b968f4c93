"""The chart's alerts: valid for promtool, unit-tested with promtool, documented in docs/runbooks.md.

The rules are the ones `helm template` renders into the PrometheusRule, with the default values
(alerts.test.yaml is written for them) and with the monitoring scenario's.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from sluice_testing.broker import REPO
from sluice_testing.observability import render_monitoring
from sluice_testing.prometheus import skip_or_fail_without

HERE = Path(__file__).resolve().parent
RUNBOOKS = REPO / "docs" / "runbooks.md"
#: Every alert the chart ships; a new one needs a unit test, a runbook section and a line here.
ALERTS = {
    "SluiceBacklogGrowing", "SluiceWorkQueueWithoutConsumers", "SluiceDeadLettersIncreasing", "SluiceRetryRatioHigh",
    "SluicePublishesFailing", "SluiceQueueUnavailable", "SluiceProcessingSlow", "SluiceQueueWaitTooLong", "SluiceConsumersAtMaximumWithBacklog",
    "SluiceBrokerDown", "SluiceBrokerMemoryAlarm", "SluiceBrokerDiskAlarm",
}


@pytest.fixture(scope="module")
def promtool() -> str:
    return skip_or_fail_without("promtool")


def _rules(**values: object) -> list[dict]:
    return render_monitoring(**values).rule_groups


def _write_rules(directory: Path, groups: list[dict]) -> Path:
    path = directory / "sluice-rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    return path


def _alerts(groups: list[dict]) -> list[dict]:
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


@pytest.mark.parametrize("values", [{}, {"monitoring.rules.additionalAlertLabels": {"team": "platform"},
                                         "consumer.groups": [{"name": "a"}, {"name": "b-c"}]}],
                         ids=["defaults", "two-groups"])
def test_rendered_rules_pass_promtool_check(promtool, tmp_path, values):
    # Given the rules rendered for these values
    path = _write_rules(tmp_path, _rules(**values))
    # When promtool checks them, Then it accepts every rule
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout


def test_every_alert_fires_and_stays_quiet_in_the_promtool_unit_tests(promtool, tmp_path):
    # Given the default rules next to the unit tests
    _write_rules(tmp_path, _rules())
    shutil.copy(HERE / "alerts.test.yaml", tmp_path / "alerts.test.yaml")
    # When promtool runs them, Then every case passes
    result = subprocess.run([promtool, "test", "rules", "alerts.test.yaml"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    # And every alert has a case where it fires and one where it does not
    cases = [case for test in yaml.safe_load((HERE / "alerts.test.yaml").read_text())["tests"]
             for case in test["alert_rule_test"]]
    fires = {c["alertname"] for c in cases if c["exp_alerts"]}
    quiet = {c["alertname"] for c in cases if not c["exp_alerts"]}
    assert fires == ALERTS, f"alerts without a firing case: {ALERTS - fires}"
    assert quiet == ALERTS, f"alerts without a quiet case: {ALERTS - quiet}"


def test_every_alert_has_a_summary_a_description_and_a_runbook_section():
    # Given the runbooks' section anchors (GitHub's: the heading in lower case)
    anchors = {m.lower() for m in re.findall(r"^## (\S+)$", RUNBOOKS.read_text(), flags=re.M)}
    alerts = _alerts(_rules())
    assert {a["alert"] for a in alerts} == ALERTS
    for alert in alerts:
        annotations = alert["annotations"]
        # Then each alert is explained and links to its own section
        assert annotations["summary"] and annotations["description"], alert["alert"]
        assert annotations["runbook_url"] == f"docs/runbooks.md#{alert['alert'].lower()}"
        assert alert["alert"].lower() in anchors, f"docs/runbooks.md has no section for {alert['alert']}"
        assert alert["labels"]["severity"] in ("warning", "critical")


def test_thresholds_and_alert_labels_come_from_values():
    # Given non-default thresholds and labels
    alerts = {a["alert"]: a for a in _alerts(_rules(**{
        "monitoring.rules.processingP99.seconds": 2.5, "monitoring.rules.backlog.minMessages": 50,
        "monitoring.rules.backlog.for": "30m", "monitoring.rules.additionalAlertLabels": {"team": "platform"},
        "monitoring.rules.runbookUrl": "https://example.org/runbooks.md"}))}
    # Then the expressions, durations and labels carry them
    assert alerts["SluiceProcessingSlow"]["expr"].endswith("> 2.5")
    assert "> 50" in alerts["SluiceBacklogGrowing"]["expr"] and alerts["SluiceBacklogGrowing"]["for"] == "30m"
    assert all(a["labels"]["team"] == "platform" for a in alerts.values())
    assert alerts["SluiceBrokerDown"]["annotations"]["runbook_url"] == "https://example.org/runbooks.md#sluicebrokerdown"


def test_queue_alerts_select_every_groups_work_queue_and_only_those():
    # Given two consumer groups and a custom prefix
    rules = {a["alert"]: a for a in _alerts(_rules(**{"config.topology.prefix": "acme",
                                                        "consumer.groups": [{"name": "billing"}, {"name": "audit"}]}))}
    # Then the queue regex names exactly their work queues, dots escaped
    assert r"queue=~`acme\.(billing|audit)`" in rules["SluiceBacklogGrowing"]["expr"]


def test_an_external_broker_selector_replaces_the_bundled_one():
    rules = {a["alert"]: a for a in _alerts(_rules(**{"monitoring.rules.brokerSelector": 'job="mq"'}))}
    assert rules["SluiceBrokerDown"]["expr"] == 'up{job="mq"} == 0 or absent(up{job="mq"})'


def test_an_external_broker_without_a_selector_gets_no_broker_side_alerts():
    # Given an external broker and no selector for its series
    alerts = {a["alert"] for a in _alerts(_rules(**{
        "rabbitmq.enabled": False, "externalBroker.enabled": True, "externalBroker.existingSecret": "broker"}))}
    # Then only the alerts on sluice's own series remain (SluiceBrokerDown would otherwise always fire)
    assert alerts == {"SluiceDeadLettersIncreasing", "SluiceRetryRatioHigh", "SluicePublishesFailing",
                      "SluiceQueueUnavailable", "SluiceProcessingSlow"}
    with_selector = {a["alert"] for a in _alerts(_rules(**{
        "rabbitmq.enabled": False, "externalBroker.enabled": True, "externalBroker.existingSecret": "broker",
        "monitoring.rules.brokerSelector": 'job="mq"'}))}
    assert with_selector == ALERTS
