"""Bearer-token authentication of the ingest: 401 without the right token, the token from a file."""

from __future__ import annotations

import os

import pytest

from sluice_common.errors import ConfigError
from sluice_producer.auth import BearerAuth

TOKEN = "tok-0123456789abcdef"


@pytest.fixture
def token_file(tmp_path):
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    return path


def test_the_right_bearer_token_passes(token_file):
    assert BearerAuth(str(token_file))({"authorization": f"Bearer {TOKEN}"}) is None


@pytest.mark.parametrize(
    "headers",
    [{}, {"authorization": "Bearer wrong-token-0123456789"}, {"authorization": TOKEN},
     {"authorization": f"Basic {TOKEN}"}, {"authorization": f"Bearer {TOKEN}x"}, {"authorization": "Bearer "}],
    ids=["missing", "wrong", "no-scheme", "basic", "longer", "empty"],
)
def test_a_missing_or_wrong_token_gets_401_without_echoing_anything(token_file, headers):
    response = BearerAuth(str(token_file))(headers)
    assert response is not None and response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert TOKEN.encode() not in response.body
    assert b"wrong-token" not in response.body


def test_a_rotated_token_file_takes_effect_without_a_restart(token_file):
    # Given a guard with the first token
    auth = BearerAuth(str(token_file))
    # When the Secret is rotated (Kubernetes swaps the file)
    replacement = token_file.with_name("token.new")
    replacement.write_text("tok-rotated-abcdef0123456789")
    os.replace(replacement, token_file)
    # Then only the new token passes
    assert auth({"authorization": f"Bearer {TOKEN}"}) is not None
    assert auth({"authorization": "Bearer tok-rotated-abcdef0123456789"}) is None


def test_an_unreadable_rotation_keeps_the_previous_token(token_file):
    auth = BearerAuth(str(token_file))
    token_file.write_text("short")
    os.utime(token_file, (1, 1))  # a different mtime for sure
    assert auth({"authorization": f"Bearer {TOKEN}"}) is None


@pytest.mark.parametrize(
    ("content", "problem"),
    [(None, "cannot read"), ("short", "at least 16"), ("has a space in it 0123456789", "printable ASCII")],
)
def test_an_unusable_token_file_stops_startup_naming_the_variable(tmp_path, content, problem):
    path = tmp_path / "token"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as error:
        BearerAuth(str(path))
    assert error.value.variable == "SLUICE_INGEST_TOKEN_FILE"
    assert problem in str(error.value)
    if content:
        assert content not in str(error.value)
