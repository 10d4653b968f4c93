"""Support for sluice's tests, demo and local deployment: a real broker, real processes, a real sink.

Nothing here is shipped in an image. Tests import it through pytest's ``pythonpath``.
"""

from __future__ import annotations
