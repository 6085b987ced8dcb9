"""The seed's DSN forms, each to a boto3 Session, and clear errors for the rest."""

from __future__ import annotations

from pathlib import Path

import pytest
from iiif_process_ecs.dsn import DsnError, parse_dsn, session_from_dsn


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    return tmp_path


def test_parse_dsn_reads_region_and_credentials() -> None:
    assert parse_dsn("region=eu-west-1  credentials=iam:") == parse_dsn(
        "credentials=iam: region=eu-west-1"
    )


def test_iam_uses_the_default_chain(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAROLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    session = session_from_dsn("region=eu-west-1 credentials=iam:")
    assert session.region_name == "eu-west-1"
    assert session.get_credentials().access_key == "AKIAROLE"


def test_env_takes_the_environment_keys(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "token")
    credentials = session_from_dsn("region=us-east-2 credentials=env:").get_credentials()
    assert (credentials.access_key, credentials.token) == ("AKIAENV", "token")


def test_env_without_keys_is_an_error(clean_env: Path) -> None:
    with pytest.raises(DsnError, match="AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"):
        session_from_dsn("region=us-east-2 credentials=env:")


def test_path_and_profile_read_that_file(clean_env: Path) -> None:
    path = clean_env / "creds.ini"
    path.write_text(
        "[other]\naws_access_key_id = AKIAO\naws_secret_access_key = s\n"
        "[work]\naws_access_key_id = AKIAWORK\naws_secret_access_key = s2\n"
    )
    session = session_from_dsn(f"region=us-west-2 credentials={path}:work")
    assert session.get_credentials().access_key == "AKIAWORK"
    assert session.region_name == "us-west-2"


def test_path_with_unknown_profile_is_an_error(clean_env: Path) -> None:
    path = clean_env / "creds.ini"
    path.write_text("[work]\naws_access_key_id = A\naws_secret_access_key = s\n")
    with pytest.raises(DsnError, match="no section for the profile"):
        session_from_dsn(f"region=us-west-2 credentials={path}:play")


def test_missing_file_is_an_error(clean_env: Path) -> None:
    with pytest.raises(DsnError, match="no such file"):
        session_from_dsn(f"region=us-west-2 credentials={clean_env}/nope.ini:work")


def test_profile_uses_the_default_credentials_file(clean_env: Path) -> None:
    (clean_env / "no-credentials").write_text(
        "[dev]\naws_access_key_id = AKIADEV\naws_secret_access_key = s\n"
    )
    session = session_from_dsn("region=ap-south-1 credentials=dev")
    assert session.get_credentials().access_key == "AKIADEV"


def test_unknown_profile_is_an_error(clean_env: Path) -> None:
    with pytest.raises(DsnError, match="no such profile"):
        session_from_dsn("region=ap-south-1 credentials=ghost")


@pytest.mark.parametrize(
    ("dsn", "message"),
    [
        ("credentials=iam:", "missing region"),
        ("region=us-east-1", "missing credentials"),
        ("region=us-east-1 credentials=iam: colour=blue", "part 3 of 3 has an unknown key"),
        ("region us-east-1", "not a key=value pair"),
        ("region=us-east-1 credentials=:", "unsupported credentials"),
        ("region=us-east-1 credentials=anon:", "unsupported credentials"),
        ("", "missing region"),
    ],
)
def test_bad_dsn_is_a_clear_error(dsn: str, message: str) -> None:
    with pytest.raises(DsnError, match=message):
        session_from_dsn(dsn)
