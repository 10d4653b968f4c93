"""Synthetic events of the kinds our first users send: sensor readings, downloads, deployments."""

from __future__ import annotations

import random
from collections.abc import Callable

from sluice_common.envelope import Event, utc_now_iso

__all__ = ["KINDS", "make_event"]

_METRICS = (("temperature", "celsius", 15.0, 35.0), ("humidity", "percent", 20.0, 90.0), ("pressure", "hPa", 980.0, 1040.0))
_SERVICES = ("checkout", "search", "payments", "inventory")


def sensor_reading(rng: random.Random, n: int) -> Event:
    metric, unit, low, high = rng.choice(_METRICS)
    return Event(
        "sensor.reading",
        {
            "sensor_id": f"sensor-{n % 64:03d}",
            "metric": metric,
            "value": round(rng.uniform(low, high), 2),
            "unit": unit,
            "recorded_at": utc_now_iso(),
        },
    )


def download_completed(rng: random.Random, n: int) -> Event:
    size = rng.randint(1_000, 5_000_000_000)
    return Event(
        "download.completed",
        {
            "file_id": f"files/{n % 1000:04d}.bin",
            "size_bytes": size,
            "speed_bytes_per_second": round(rng.uniform(50_000, 120_000_000), 1),
            "coordinates": {"latitude": round(rng.uniform(-90, 90), 5), "longitude": round(rng.uniform(-180, 180), 5)},
            "completed_at": utc_now_iso(),
        },
    )


def deployment_created(rng: random.Random, n: int) -> Event:
    return Event(
        "deployment.created",
        {
            "service": rng.choice(_SERVICES),
            "release": f"1.{n // 100}.{n % 100}",
            "environment": rng.choice(("staging", "production")),
            "deployed_at": utc_now_iso(),
            "commit": f"{rng.getrandbits(40):010x}",
            "triggered_by": "ci",
        },
    )


#: Generator kind (``SLUICE_GENERATOR_KINDS``) → function making one event of it.
KINDS: dict[str, Callable[[random.Random, int], Event]] = {
    "sensor": sensor_reading,
    "download": download_completed,
    "deployment": deployment_created,
}


def make_event(kind: str, rng: random.Random, n: int) -> Event:
    """The ``n``-th synthetic event of ``kind``."""
    return KINDS[kind](rng, n)
