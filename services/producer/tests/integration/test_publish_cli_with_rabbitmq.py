"""``sluice publish`` through the ``sluice`` command of sluice-common, against a real RabbitMQ 4.x."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from sluice_common.config import TopologySettings
from sluice_common.topology import group_topology
from sluice_testing.events import READING

pytestmark = pytest.mark.integration


def test_sluice_publish_confirms_valid_lines_and_reports_invalid_ones(rabbitmq, prefix):
    # Given a group bound to the events exchange
    topology = group_topology(TopologySettings(prefix=prefix, exchange=f"{prefix}.events"), "default")
    rabbitmq.declare(topology)
    lines = [json.dumps({"type": "sensor.reading", "data": READING, "id": f"cli-{i}"}) for i in range(3)]
    lines.append('{"type": "sensor.reading"}')
    env = {**os.environ, "SLUICE_AMQP_URL": rabbitmq.amqp_url, "SLUICE_TOPOLOGY_PREFIX": prefix,
           "SLUICE_TOPOLOGY_EXCHANGE": f"{prefix}.events"}
    # When four lines are piped to `sluice publish -`, one of them invalid
    result = subprocess.run([sys.executable, "-m", "sluice_common.cli", "publish", "-"], input="\n".join(lines),
                            env=env, capture_output=True, text=True, timeout=60, check=False)
    # Then three are confirmed and in the queue, the fourth is named, and the exit status says so
    assert result.returncode == 1
    assert json.loads(result.stdout) == {"published": 3, "confirmed": 3, "failed": 1}
    assert "line 4: invalid" in result.stderr
    assert sorted(m.message_id for m in rabbitmq.drain(topology.work.name)) == ["cli-0", "cli-1", "cli-2"]
