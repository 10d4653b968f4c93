"""Settings for both services, read from ``SLUICE_*`` environment variables.

Every setting is validated when the service starts. A bad value raises :class:`ConfigError`
naming the variable, and the service exits non-zero before it touches the broker.

The full table of variables is in the README ("Configuration"); :data:`VARIABLES` below is the
single source it is generated from, and a test keeps the two in step.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from sluice_common.errors import ConfigError

__all__ = [
    "VARIABLES",
    "AmqpSettings",
    "ConsumerSettings",
    "HttpSettings",
    "ProducerSettings",
    "Settings",
    "SinkSettings",
    "TopologySettings",
    "Variable",
    "markdown_table",
    "parse_duration",
    "redact_url",
]

T = TypeVar("T")

#: Units accepted by :func:`parse_duration`, in seconds.
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
#: Queue and exchange names: what RabbitMQ accepts, minus whitespace, and not reserved.
_NAME_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")
#: AMQP topic binding keys: dot-separated words, ``*`` and ``#``.
_BINDING_RE = re.compile(r"^(?:[A-Za-z0-9_-]+|\*|#)(?:\.(?:[A-Za-z0-9_-]+|\*|#))*$")


@dataclass(frozen=True)
class Variable:
    """One environment variable: its name, default and one-line description."""

    name: str
    default: str
    description: str
    service: str = "both"


#: Every variable sluice reads. The README's configuration table is generated from this list.
VARIABLES: tuple[Variable, ...] = (
    Variable("SLUICE_AMQP_URL", "amqp://guest:guest@localhost:5672/%2F", "Broker URL (`amqp://` or `amqps://`)."),
    Variable("SLUICE_AMQP_USERNAME", "", "Overrides the user in the URL (for credentials from a Secret)."),
    Variable("SLUICE_AMQP_PASSWORD", "", "Overrides the password in the URL (for credentials from a Secret)."),
    Variable("SLUICE_AMQP_HEARTBEAT_SECONDS", "30", "AMQP heartbeat interval."),
    Variable("SLUICE_AMQP_CA_FILE", "", "CA bundle to verify the broker's TLS certificate (`amqps://`)."),
    Variable("SLUICE_AMQP_CERT_FILE", "", "Client certificate for TLS (optional)."),
    Variable("SLUICE_AMQP_KEY_FILE", "", "Client private key for TLS (optional)."),
    Variable("SLUICE_TOPOLOGY_EXCHANGE", "sluice.events", "Durable topic exchange events are published to."),
    Variable("SLUICE_TOPOLOGY_PREFIX", "sluice", "Prefix of every queue name: `<prefix>.<group>`, `.retry.<delay>`, `.dead`."),
    Variable("SLUICE_TOPOLOGY_QUEUE_TYPE", "quorum", "`quorum` (replicated, delivery limit) or `classic`."),
    Variable("SLUICE_TOPOLOGY_DELIVERY_LIMIT", "20", "Quorum only: deliveries before the broker dead-letters a message."),
    Variable("SLUICE_RETRY_DELAYS", "1s,5s,30s,2m,10m", "Delay of each retry tier, in order (`ms`, `s`, `m`, `h`)."),
    Variable("SLUICE_RETRY_MAX_ATTEMPTS", "6", "Processing attempts before a message is dead-lettered (`max_attempts`)."),
    Variable("SLUICE_CONSUMER_GROUP", "default", "Consumer group this process serves.", "consumer"),
    Variable("SLUICE_CONSUMER_BINDING_KEYS", "#", "Comma-separated topic binding keys of the group's work queue.", "consumer"),
    Variable("SLUICE_CONSUMER_PREFETCH", "100", "Unacknowledged messages the broker may hand this process.", "consumer"),
    Variable("SLUICE_CONSUMER_CONCURRENCY", "8", "Worker threads processing messages.", "consumer"),
    Variable("SLUICE_CONSUMER_SHUTDOWN_GRACE_SECONDS", "20", "Time in-flight work gets to finish after SIGTERM.", "consumer"),
    Variable("SLUICE_CONSUMER_PROCESSORS", "", "Processors run before the sink, in order: `stamp` or `package.module:Name` (comma-separated).", "consumer"),
    Variable("SLUICE_CONSUMER_QUEUE_POLL_SECONDS", "5", "How often queue depths are read from the broker.", "both"),
    Variable("SLUICE_SCHEMA_DIR", "", "Directory of `<event type>.json` JSON Schemas, replacing the built-in ones."),
    Variable("SLUICE_MAX_MESSAGE_BYTES", "262144", "Largest event body accepted (ingest) or processed (consumer)."),
    Variable("SLUICE_SINK_KIND", "log", "Where events are delivered: `http`, `log`, `file` or `null`.", "consumer"),
    Variable("SLUICE_SINK_URL", "", "Webhook URL for the `http` sink.", "consumer"),
    Variable("SLUICE_SINK_TIMEOUT_SECONDS", "10", "Timeout of one webhook call.", "consumer"),
    Variable("SLUICE_SINK_SUCCESS_CODES", "200-299", "HTTP statuses that count as delivered (`200,202` or `200-299`).", "consumer"),
    Variable("SLUICE_SINK_PATH", "", "JSON-lines file the `file` sink appends to.", "consumer"),
    Variable("SLUICE_HTTP_HOST", "0.0.0.0", "Address of the HTTP port (metrics, probes, ingest)."),
    Variable("SLUICE_HTTP_PORT", "8080", "HTTP port serving `/metrics`, `/healthz`, `/readyz` (and `/events`)."),
    Variable("SLUICE_LOG_LEVEL", "INFO", "`DEBUG`, `INFO`, `WARNING` or `ERROR`."),
    Variable("SLUICE_LOG_FORMAT", "json", "`json` (one object per line) or `text`."),
    Variable("SLUICE_PUBLISH_MAX_OUTSTANDING", "1000", "Messages published but not yet confirmed, at most.", "producer"),
    Variable("SLUICE_PUBLISH_TIMEOUT_SECONDS", "10", "How long a publish may wait for its confirm.", "producer"),
    Variable("SLUICE_INGEST_ENABLED", "true", "Serve `POST /events` on the HTTP port.", "producer"),
    Variable("SLUICE_INGEST_MAX_BYTES", "1048576", "Largest request body `POST /events` accepts (413 above).", "producer"),
    Variable("SLUICE_GENERATOR_RATE", "0", "Synthetic events per second (0: generator off).", "producer"),
    Variable("SLUICE_GENERATOR_COUNT", "0", "Synthetic events to publish, then stop (0: until stopped).", "producer"),
    Variable("SLUICE_GENERATOR_KINDS", "sensor,download,deployment", "Synthetic event kinds to mix.", "producer"),
)

_DEFAULTS = {v.name: v.default for v in VARIABLES}


def markdown_table() -> str:
    """The README's configuration table (``make config-docs`` writes it; a test compares)."""
    rows = ["| variable | default | used by | meaning |", "|---|---|---|---|"]
    for v in VARIABLES:
        default = f"`{v.default}`" if v.default else ""
        rows.append(f"| `{v.name}` | {default} | {v.service} | {v.description} |")
    return "\n".join(rows) + "\n"


@dataclass(frozen=True)
class AmqpSettings:
    """How to reach the broker."""

    url: str
    heartbeat_s: int = 30
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""

    def __repr__(self) -> str:  # never show the password, even in a traceback
        return f"AmqpSettings(url={redact_url(self.url)!r}, heartbeat_s={self.heartbeat_s})"


@dataclass(frozen=True)
class TopologySettings:
    """Names and arguments of the exchange and queues (see ``topology.py``)."""

    exchange: str = "sluice.events"
    prefix: str = "sluice"
    queue_type: str = "quorum"
    delivery_limit: int = 20
    retry_delays_s: tuple[float, ...] = (1.0, 5.0, 30.0, 120.0, 600.0)
    max_attempts: int = 6


@dataclass(frozen=True)
class ConsumerSettings:
    """What one consumer process serves and how hard it works."""

    group: str = "default"
    binding_keys: tuple[str, ...] = ("#",)
    prefetch: int = 100
    concurrency: int = 8
    shutdown_grace_s: float = 20.0
    processors: tuple[str, ...] = ()


@dataclass(frozen=True)
class SinkSettings:
    """Where a consumer delivers events."""

    kind: str = "log"
    url: str = ""
    timeout_s: float = 10.0
    success_codes: frozenset[int] = field(default_factory=lambda: frozenset(range(200, 300)))
    path: str = ""


@dataclass(frozen=True)
class HttpSettings:
    """The HTTP port of a service."""

    host: str = "0.0.0.0"
    port: int = 8080


@dataclass(frozen=True)
class ProducerSettings:
    """Publishing, ingest and generator settings."""

    max_outstanding: int = 1000
    publish_timeout_s: float = 10.0
    ingest_enabled: bool = True
    ingest_max_bytes: int = 1048576
    generator_rate: float = 0.0
    generator_count: int = 0
    generator_kinds: tuple[str, ...] = ("sensor", "download", "deployment")


@dataclass(frozen=True)
class Settings:
    """Everything a service needs, validated."""

    amqp: AmqpSettings
    topology: TopologySettings
    consumer: ConsumerSettings
    sink: SinkSettings
    http: HttpSettings
    producer: ProducerSettings
    schema_dir: str = ""
    max_message_bytes: int = 262144
    queue_poll_s: float = 5.0
    log_level: str = "INFO"
    log_format: str = "json"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Read and validate every ``SLUICE_*`` variable.

        Raises:
            ConfigError: a value is malformed or out of range; the message names the variable.
        """
        env = _Reader(environ)
        delays = env.get("SLUICE_RETRY_DELAYS", _parse_delays)
        topology = TopologySettings(
            exchange=env.get("SLUICE_TOPOLOGY_EXCHANGE", _parse_name),
            prefix=env.get("SLUICE_TOPOLOGY_PREFIX", _parse_name),
            queue_type=env.get("SLUICE_TOPOLOGY_QUEUE_TYPE", _choice("quorum", "classic")),
            delivery_limit=env.get("SLUICE_TOPOLOGY_DELIVERY_LIMIT", _int(minimum=1)),
            retry_delays_s=delays,
            max_attempts=env.get("SLUICE_RETRY_MAX_ATTEMPTS", _int(minimum=1)),
        )
        sink = SinkSettings(
            kind=env.get("SLUICE_SINK_KIND", _choice("http", "log", "file", "null")),
            url=env.get("SLUICE_SINK_URL", str),
            timeout_s=env.get("SLUICE_SINK_TIMEOUT_SECONDS", _positive_duration),
            success_codes=env.get("SLUICE_SINK_SUCCESS_CODES", _parse_status_codes),
            path=env.get("SLUICE_SINK_PATH", str),
        )
        if sink.kind == "http" and not sink.url.startswith(("http://", "https://")):
            raise ConfigError("SLUICE_SINK_URL", sink.url, "the http sink needs an http:// or https:// URL")
        if sink.kind == "file" and not sink.path:
            raise ConfigError("SLUICE_SINK_PATH", sink.path, "the file sink needs a file path")
        amqp = AmqpSettings(
            url=_amqp_url(env),
            heartbeat_s=env.get("SLUICE_AMQP_HEARTBEAT_SECONDS", _int(minimum=0, maximum=3600)),
            ca_file=env.get("SLUICE_AMQP_CA_FILE", str),
            cert_file=env.get("SLUICE_AMQP_CERT_FILE", str),
            key_file=env.get("SLUICE_AMQP_KEY_FILE", str),
        )
        if bool(amqp.cert_file) != bool(amqp.key_file):
            raise ConfigError("SLUICE_AMQP_KEY_FILE", amqp.key_file, "set both a client certificate and its key, or neither")
        return cls(
            amqp=amqp,
            topology=topology,
            consumer=ConsumerSettings(
                group=env.get("SLUICE_CONSUMER_GROUP", _parse_name),
                binding_keys=env.get("SLUICE_CONSUMER_BINDING_KEYS", _parse_binding_keys),
                prefetch=env.get("SLUICE_CONSUMER_PREFETCH", _int(minimum=1, maximum=65535)),
                concurrency=env.get("SLUICE_CONSUMER_CONCURRENCY", _int(minimum=1, maximum=1024)),
                shutdown_grace_s=env.get("SLUICE_CONSUMER_SHUTDOWN_GRACE_SECONDS", _duration),
                processors=env.get("SLUICE_CONSUMER_PROCESSORS", _parse_processors),
            ),
            sink=sink,
            http=HttpSettings(
                host=env.get("SLUICE_HTTP_HOST", str),
                port=env.get("SLUICE_HTTP_PORT", _int(minimum=0, maximum=65535)),
            ),
            producer=ProducerSettings(
                max_outstanding=env.get("SLUICE_PUBLISH_MAX_OUTSTANDING", _int(minimum=1, maximum=100000)),
                publish_timeout_s=env.get("SLUICE_PUBLISH_TIMEOUT_SECONDS", _positive_duration),
                ingest_enabled=env.get("SLUICE_INGEST_ENABLED", _bool),
                ingest_max_bytes=env.get("SLUICE_INGEST_MAX_BYTES", _int(minimum=1)),
                generator_rate=env.get("SLUICE_GENERATOR_RATE", _float(minimum=0.0)),
                generator_count=env.get("SLUICE_GENERATOR_COUNT", _int(minimum=0)),
                generator_kinds=env.get("SLUICE_GENERATOR_KINDS", _parse_kinds),
            ),
            schema_dir=env.get("SLUICE_SCHEMA_DIR", str),
            max_message_bytes=env.get("SLUICE_MAX_MESSAGE_BYTES", _int(minimum=1)),
            queue_poll_s=env.get("SLUICE_CONSUMER_QUEUE_POLL_SECONDS", _positive_duration),
            log_level=env.get("SLUICE_LOG_LEVEL", _choice("DEBUG", "INFO", "WARNING", "ERROR", upper=True)),
            log_format=env.get("SLUICE_LOG_FORMAT", _choice("json", "text")),
        )


class _Reader:
    """Reads one variable at a time, with its default, and names it in every error."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def raw(self, name: str) -> str:
        return self._environ.get(name, _DEFAULTS[name])

    def get(self, name: str, parse: Callable[[str], T]) -> T:
        value = self.raw(name)
        try:
            return parse(value)
        except ValueError as e:
            raise ConfigError(name, value, str(e)) from None


def parse_duration(text: str) -> float:
    """``"1.5s"`` → 1.5, ``"2m"`` → 120.0, ``"250ms"`` → 0.25; a bare number is seconds."""
    match = _DURATION_RE.match(text)
    if not match:
        raise ValueError("expected a duration such as 500ms, 5s, 2m or 1h")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2) or "s"]


def _duration(text: str) -> float:
    return parse_duration(text)


def _positive_duration(text: str) -> float:
    value = parse_duration(text)
    if value <= 0:
        raise ValueError("must be greater than zero")
    return value


def _int(*, minimum: int | None = None, maximum: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise ValueError("expected a whole number") from None
        if minimum is not None and value < minimum:
            raise ValueError(f"must be at least {minimum}")
        if maximum is not None and value > maximum:
            raise ValueError(f"must be at most {maximum}")
        return value

    return parse


def _float(*, minimum: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise ValueError("expected a number") from None
        if value != value or value < minimum:  # NaN, or below the minimum
            raise ValueError(f"must be a number of at least {minimum}")
        return value

    return parse


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _choice(*choices: str, upper: bool = False) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().upper() if upper else text.strip()
        if value not in choices:
            raise ValueError("expected one of " + ", ".join(choices))
        return value

    return parse


def _parse_name(text: str) -> str:
    if not _NAME_RE.match(text) or text.startswith("amq."):
        raise ValueError("expected 1-200 letters, digits, '.', '_', ':' or '-', not starting with 'amq.'")
    return text


def _parse_delays(text: str) -> tuple[float, ...]:
    parts = [p for p in (s.strip() for s in text.split(",")) if p]
    if not parts:
        raise ValueError("expected at least one delay, e.g. 1s,5s,30s")
    delays = tuple(parse_duration(p) for p in parts)
    if any(d < 0.001 for d in delays):
        raise ValueError("every delay must be at least 1ms")
    if len(set(delays)) != len(delays):
        raise ValueError("delays must be distinct (each names a queue)")
    return delays


def _parse_binding_keys(text: str) -> tuple[str, ...]:
    keys = tuple(k for k in (s.strip() for s in text.split(",")) if k)
    if not keys:
        raise ValueError("expected at least one binding key, e.g. # or sensor.*")
    for key in keys:
        if not _BINDING_RE.match(key):
            raise ValueError(f"{key!r} is not a topic binding key (dot-separated words, * and #)")
    return keys


def _parse_status_codes(text: str) -> frozenset[int]:
    codes: set[int] = set()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        low, _, high = part.partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError:
            raise ValueError(f"{part!r} is not a status code or a range like 200-299") from None
        if not 100 <= first <= last <= 599:
            raise ValueError(f"{part!r} is outside 100-599")
        codes.update(range(first, last + 1))
    if not codes:
        raise ValueError("expected at least one status code")
    return frozenset(codes)


_PROCESSOR_REFERENCE = re.compile(r"^[a-z_][a-z0-9_]*$|^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def _parse_processors(text: str) -> tuple[str, ...]:
    names = tuple(n for n in (s.strip() for s in text.split(",")) if n)
    bad = [n for n in names if not _PROCESSOR_REFERENCE.match(n)]
    if bad:
        raise ValueError(f"{bad[0]!r} is neither a built-in processor name nor a `package.module:Name` reference")
    return names


def _parse_kinds(text: str) -> tuple[str, ...]:
    known = ("sensor", "download", "deployment")
    kinds = tuple(k for k in (s.strip() for s in text.split(",")) if k)
    unknown = [k for k in kinds if k not in known]
    if unknown or not kinds:
        raise ValueError("expected a comma-separated subset of " + ", ".join(known))
    return kinds


def _amqp_url(env: _Reader) -> str:
    url = env.raw("SLUICE_AMQP_URL")
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("amqp", "amqps") or not parsed.hostname:
        raise ConfigError("SLUICE_AMQP_URL", redact_url(url), "expected amqp://user:pass@host:port/vhost or amqps://...")
    try:
        parsed.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        raise ConfigError("SLUICE_AMQP_URL", redact_url(url), "the port is not a number") from None
    user, password = env.raw("SLUICE_AMQP_USERNAME"), env.raw("SLUICE_AMQP_PASSWORD")
    if not (user or password):
        return url
    user = urllib.parse.quote(user or urllib.parse.unquote(parsed.username or ""), safe="")
    password = urllib.parse.quote(password or urllib.parse.unquote(parsed.password or ""), safe="")
    host = parsed.hostname if ":" not in parsed.hostname else f"[{parsed.hostname}]"
    netloc = f"{user}:{password}@{host}" + (f":{parsed.port}" if parsed.port else "")
    return urllib.parse.urlunsplit((parsed.scheme, netloc, parsed.path, parsed.query, parsed.fragment))


def redact_url(url: str) -> str:
    """The URL with its password replaced by ``***``, safe for logs and errors."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.password is None:
        return url
    netloc = parsed.netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit((parsed.scheme, f"{parsed.username}:***@{netloc}", parsed.path, parsed.query, parsed.fragment))
