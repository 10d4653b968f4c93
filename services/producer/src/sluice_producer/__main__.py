"""``python -m sluice_producer``: the ingest API and, when ``SLUICE_GENERATOR_RATE`` > 0, the generator."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from types import FrameType

from sluice_common import __version__, metrics
from sluice_common.config import Settings
from sluice_common.errors import ConfigError
from sluice_common.httpserver import StatusServer
from sluice_common.logging import configure_logging
from sluice_common.validation import SchemaRegistry
from sluice_producer.publisher import EventPublisher
from sluice_producer.sources.generator import Generator
from sluice_producer.sources.ingest import IngestRoute

_log = logging.getLogger("sluice.producer")

#: Time in-flight publishes get to be confirmed after SIGTERM.
SHUTDOWN_GRACE_S = 10.0


def main() -> int:
    """Run the producer until SIGTERM/SIGINT (or until a fixed-count generator is done)."""
    try:
        settings = Settings.from_env(os.environ)
        schemas = SchemaRegistry.load(settings.schema_dir)
    except ConfigError as e:
        print(f"sluice-producer: configuration error: {e}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    metrics.BUILD_INFO.info({"version": __version__})

    publisher = EventPublisher(settings, schemas=schemas)
    metrics.PUBLISH_OUTSTANDING.set_function(lambda: publisher.publisher.outstanding)
    routes = {("POST", "/events"): IngestRoute(publisher)} if settings.producer.ingest_enabled else {}
    server = StatusServer(
        settings.http.host,
        settings.http.port,
        alive=lambda: publisher.publisher.alive,
        ready=lambda: publisher.ready,
        routes=routes,
        max_body=settings.producer.ingest_max_bytes,
    )
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            os._exit(1)
        _log.info("Received %s: shutting down.", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    server.start()
    publisher.start()
    producer = settings.producer
    generator_done = threading.Event()
    if producer.generator_rate > 0:
        generator = Generator(rate=producer.generator_rate, count=producer.generator_count, kinds=producer.generator_kinds)

        def run_generator() -> None:
            try:
                generator.run(publisher, stop)
            finally:
                generator_done.set()

        threading.Thread(target=run_generator, name="generator", daemon=True).start()
        _log.info("Generating %g event(s)/s of %s.", producer.generator_rate, ", ".join(producer.generator_kinds))
    _log.info("Producer started%s.", " (ingest on POST /events)" if producer.ingest_enabled else "")

    while not stop.wait(0.5):
        if generator_done.is_set() and not producer.ingest_enabled:
            break  # a fixed count with nothing else to serve: done
    if producer.generator_rate > 0:
        generator_done.wait(SHUTDOWN_GRACE_S)  # let the last publishes get their confirms
    server.stop()
    publisher.stop()
    _log.info("Producer has been shut down.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
