"""``python -m sluice_consumer``: settings → logging → metrics server → signals → run."""

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
from sluice_common.topology import group_topology
from sluice_common.validation import SchemaRegistry
from sluice_consumer.pipeline import Pipeline
from sluice_consumer.processors import build_processors
from sluice_consumer.sinks import build_sink
from sluice_consumer.worker import Worker

_log = logging.getLogger("sluice.consumer")


def main() -> int:
    """Run the consumer until SIGTERM or SIGINT; returns the exit status."""
    try:
        settings = Settings.from_env(os.environ)
        schemas = SchemaRegistry.load(settings.schema_dir)
        sink = build_sink(settings.sink)
        processors = build_processors(settings.consumer.processors, settings.consumer.group)
        topology = group_topology(settings.topology, settings.consumer.group, settings.consumer.binding_keys)
        pipeline = Pipeline.from_settings(settings, topology, schemas=schemas, sink=sink, processors=processors)
        worker = Worker(settings, topology, pipeline, sink_name=sink.name)  # loads the TLS files
    except ConfigError as e:
        print(f"sluice-consumer: configuration error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"sluice-consumer: configuration error: SLUICE_SINK_PATH: {e}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    metrics.BUILD_INFO.info({"version": __version__})

    server = StatusServer(
        settings.http.host, settings.http.port, alive=lambda: worker.consumer.alive, ready=lambda: worker.ready
    )

    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            _log.warning("Second signal: exiting now; unsettled messages go back to the queue.")
            os._exit(1)
        _log.info("Received %s: shutting down.", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    server.start()
    worker.start()
    _log.info("Consumer of group %r started (sink %s).", settings.consumer.group, sink.name)
    while not stop.wait(0.5):
        if worker.consumer.fatal_error is not None:
            _log.error("Cannot continue: %s", worker.consumer.fatal_error)
            worker.stop(0)
            server.stop()
            return 3
    worker.stop(settings.consumer.shutdown_grace_s)  # unfinished work is requeued: nothing is lost
    sink.close()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
