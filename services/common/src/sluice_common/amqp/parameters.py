"""Connection parameters for pika, with TLS set up from the settings' files."""

from __future__ import annotations

import socket
import ssl

import pika

from sluice_common.config import AmqpSettings
from sluice_common.errors import ConfigError

__all__ = ["connection_parameters", "tls_context"]


def connection_parameters(settings: AmqpSettings, name: str) -> pika.URLParameters:
    """pika parameters for the broker, with TLS set up from the settings' files."""
    params = pika.URLParameters(settings.url)
    params.heartbeat = settings.heartbeat_s
    params.connection_attempts = 1  # the session's own loop retries, with backoff
    params.socket_timeout = 10
    params.client_properties = {"connection_name": f"{name}@{socket.gethostname()}"}
    if settings.url.startswith("amqps://"):
        params.ssl_options = pika.SSLOptions(tls_context(settings), server_hostname=params.host)
    return params


def tls_context(settings: AmqpSettings) -> ssl.SSLContext:
    """A client TLS context that verifies the broker's certificate and host name.

    Trusts ``ca_file`` when set, else the system's CAs; presents ``cert_file``/``key_file`` when set.

    Raises:
        ConfigError: a file is not a PEM certificate or key (or the key does not match the
            certificate); the message names the variable.
    """
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.ca_file:
        try:
            context.load_verify_locations(cafile=settings.ca_file)
        except (ssl.SSLError, OSError) as e:
            raise ConfigError("SLUICE_AMQP_CA_FILE", settings.ca_file, f"not a PEM CA bundle ({e})") from None
    if settings.cert_file:
        try:
            context.load_cert_chain(settings.cert_file, settings.key_file)
        except (ssl.SSLError, OSError) as e:
            raise ConfigError(
                "SLUICE_AMQP_CERT_FILE", settings.cert_file, f"certificate and SLUICE_AMQP_KEY_FILE do not load ({e})"
            ) from None
    return context
