"""Settings of the security features: TLS files, ingest token file, rate limit."""

from __future__ import annotations

import pytest

from sluice_common.config import Settings
from sluice_common.errors import ConfigError

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
