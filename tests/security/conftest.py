"""A RabbitMQ 4.x with a mutual-TLS listener and certificates generated for this run, shared by the
security tests of this directory and removed afterwards."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sluice_testing.broker import Broker, owned_broker
from sluice_testing.certificates import CertificateAuthority, KeyPair


@dataclass(frozen=True)
class Pki:
    """The broker's CA with a client certificate it signed, a CA the broker never heard of, and the
    directory the broker's own files are in (``ca.crt``, ``server.crt``, ``server.key``)."""

    ca: Path
    client: KeyPair
    wrong_ca: Path
    broker_dir: Path


@pytest.fixture(scope="package")
def pki(tmp_path_factory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca = CertificateAuthority(directory / "ca", "sluice test CA")
    server = ca.issue("server", hosts=["127.0.0.1", "localhost"])
    broker_dir = directory / "broker"
    broker_dir.mkdir()
    for source, target in ((ca.cert, "ca.crt"), (server.cert, "server.crt"), (server.key, "server.key")):
        shutil.copy(source, broker_dir / target)
    wrong = CertificateAuthority(directory / "wrong", "sluice impostor CA")
    return Pki(ca=ca.cert, client=ca.issue("client", client=True), wrong_ca=wrong.cert, broker_dir=broker_dir)


@pytest.fixture(scope="package")
def tls_broker(pki: Pki) -> Iterator[Broker]:
    """A broker of our own (it needs the TLS listener the shared one lacks); removed afterwards.

    Skips where no broker can start; fails in CI.
    """
    with owned_broker("tls", tls_dir=pki.broker_dir) as broker:
        assert broker.amqps_url, "the broker publishes no TLS port"
        yield broker


@pytest.fixture(scope="package")
def tls_env(tls_broker: Broker, pki: Pki):
    """``tls_env(ca=None, client=True)``: SLUICE_* settings reaching the TLS broker, with the client
    certificate unless told not to, trusting ``ca`` (default: the broker's CA)."""

    def env(*, ca: Path | None = None, client: bool = True) -> dict[str, str]:
        settings = {"SLUICE_AMQP_URL": tls_broker.amqps_url, "SLUICE_AMQP_CA_FILE": str(ca or pki.ca)}
        if client:
            settings |= {"SLUICE_AMQP_CERT_FILE": str(pki.client.cert), "SLUICE_AMQP_KEY_FILE": str(pki.client.key)}
        return settings

    return env
