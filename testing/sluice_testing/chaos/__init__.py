"""The chaos suite's machinery: a round's services, its load, its faults and its accounting.

A round (:func:`sluice_testing.chaos.round.run_round`) starts two consumers and a producer behind
loopback TCP proxies, drives events through the producer's ingest API, injects one fault, waits
until every confirmed event has settled, and returns the accounting (lost, duplicates, recovery).
``tests/chaos`` runs rounds as tests; ``make chaos`` runs more of them and prints the table.
"""

from __future__ import annotations
