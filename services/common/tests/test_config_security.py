"""Settings of the security features: TLS files, ingest token file, rate limit."""

from __future__ import annotations

import ssl

import pytest

from sluice_common.amqp import tls_context
from sluice_common.config import AmqpSettings, Settings
from sluice_common.errors import ConfigError
from sluice_testing.certificates import CertificateAuthority

AMQPS = "amqps://sluice:pw@broker.example:5671/%2F"


def test_ingest_security_settings_are_read(tmp_path):
    token = tmp_path / "token"
    token.write_text("x" * 20)
    settings = Settings.from_env({"SLUICE_INGEST_TOKEN_FILE": str(token), "SLUICE_INGEST_RATE_LIMIT": "50",
                                  "SLUICE_INGEST_RATE_BURST": "100"}).producer
    assert (settings.ingest_token_file, settings.ingest_rate_limit, settings.ingest_rate_burst) == (str(token), 50, 100)


def test_security_is_off_by_default():
    producer = Settings.from_env({}).producer
    assert (producer.ingest_token_file, producer.ingest_rate_limit) == ("", 0)
    assert Settings.from_env({}).amqp.tls_files == {}


@pytest.mark.parametrize("variable", ["SLUICE_AMQP_CA_FILE", "SLUICE_INGEST_TOKEN_FILE"])
def test_a_missing_file_stops_startup_naming_the_variable(tmp_path, variable):
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"SLUICE_AMQP_URL": AMQPS, variable: str(tmp_path / "absent")})
    assert raised.value.variable == variable and "no such file" in str(raised.value)


def test_tls_files_with_a_plain_amqp_url_are_refused(tmp_path):
    # Given a CA file but an amqp:// URL: the operator believes the link is encrypted
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"SLUICE_AMQP_URL": "amqp://u:p@broker:5672/%2F", "SLUICE_AMQP_CA_FILE": str(ca)})
    assert raised.value.variable == "SLUICE_AMQP_CA_FILE" and "amqps://" in str(raised.value)


@pytest.mark.parametrize(("variable", "value"), [("SLUICE_INGEST_RATE_LIMIT", "-1"), ("SLUICE_INGEST_RATE_LIMIT", "nan"),
                                                 ("SLUICE_INGEST_RATE_BURST", "many")])
def test_a_bad_rate_limit_is_rejected(variable, value):
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({variable: value})
    assert raised.value.variable == variable


def test_a_client_certificate_with_the_wrong_key_stops_startup_naming_the_variable(tmp_path):
    # Given a certificate and the key of another certificate
    ca = CertificateAuthority(tmp_path, "test CA")
    first, second = ca.issue("one", client=True), ca.issue("two", client=True)
    settings = AmqpSettings(url=AMQPS, ca_file=str(ca.cert), cert_file=str(first.cert), key_file=str(second.key))
    # When the TLS context is built, Then the error names the certificate variable
    with pytest.raises(ConfigError) as raised:
        tls_context(settings)
    assert raised.value.variable == "SLUICE_AMQP_CERT_FILE"


def test_a_tls_context_verifies_the_broker_and_refuses_old_protocols(tmp_path):
    ca = CertificateAuthority(tmp_path, "test CA")
    pair = ca.issue("client", client=True)
    context = tls_context(AmqpSettings(url=AMQPS, ca_file=str(ca.cert), cert_file=str(pair.cert), key_file=str(pair.key)))
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
