"""The chaos suite's machinery: a round's services, its load, its faults and its accounting.

A round (:func:`sluice_testing.chaos.round.run_round`) runs against a rig
(:class:`sluice_testing.chaos.base.ChaosRig`): two consumers and a producer, drives events through
the producer's ingest API, injects one fault, waits until every confirmed event has settled, and
returns the accounting (lost, duplicates, recovery). :class:`sluice_testing.chaos.rig.Rig` runs the
services as local processes, the consumers behind a loopback TCP proxy (``tests/chaos``, ``make
chaos``); ``sluice_e2e.chaos.KindRig`` runs the same rounds on the chart in a kind cluster, where
the faults strike pods (``k8s-tests/scenarios/test_e2e_chaos.py``).
"""

from __future__ import annotations
