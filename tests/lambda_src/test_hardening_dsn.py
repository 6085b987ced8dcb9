"""Issue #8 item 11: DSN errors name the file and the problem, never file contents or secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from iiif_process_ecs.dsn import DsnError, session_from_dsn

from tests.lambda_src.test_ecs_trigger_cli import cli

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
PASSWORD = "hunter2-do-not-print"


@pytest.fixture
def secrets_file(tmp_path: Path) -> Path:
    """A dotenv-style secrets file: not INI, every line a secret."""
    path = tmp_path / "secrets.env"
    path.write_text(f"DB_PASSWORD={PASSWORD}\nAWS_SECRET_ACCESS_KEY={SECRET}\n")
    return path


def error_of(dsn: str) -> str:
    with pytest.raises(DsnError) as caught:
        session_from_dsn(dsn)
    return str(caught.value)


def test_a_non_ini_credentials_file_is_named_but_not_echoed(secrets_file: Path) -> None:
    message = error_of(f"region=us-east-1 credentials={secrets_file}:default")
    assert str(secrets_file) in message
    assert "not an INI credentials file" in message
    assert PASSWORD not in message
    assert SECRET not in message


def test_the_cli_does_not_print_a_non_ini_credentials_file(secrets_file: Path) -> None:
    status, out, err = cli(
        ["-ecs-dsn", f"region=us-east-1 credentials={secrets_file}:default", "-uri", "a.jpg"]
    )
    assert status == 2
    assert str(secrets_file) in err
    assert PASSWORD not in err + out
    assert SECRET not in err + out


def test_an_ini_file_with_a_bad_line_is_not_echoed(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    path.write_text(f"[default]\naws_access_key_id = AKIA\n{SECRET}\n")
    message = error_of(f"region=us-east-1 credentials={path}:default")
    assert str(path) in message
    assert "line 3" in message
    assert SECRET not in message


def test_a_binary_credentials_file_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "key.bin"
    path.write_bytes(b"\xff\xfe" + SECRET.encode() + b"\x00\x80")
    message = error_of(f"region=us-east-1 credentials={path}:default")
    assert str(path) in message
    assert "UTF-8" in message
    assert SECRET not in message


def test_a_secret_with_a_percent_sign_is_read_as_written(tmp_path: Path) -> None:
    # configparser's interpolation would raise an error quoting the value.
    path = tmp_path / "credentials"
    path.write_text("[work]\naws_access_key_id = AKIAWORK\naws_secret_access_key = a%b\n")
    session = session_from_dsn(f"region=us-east-1 credentials={path}:work")
    assert session.get_credentials().secret_key == "a%b"


@pytest.mark.parametrize(
    "dsn",
    [
        f"region=us-east-1 credentials=AKIAIOSFODNN7EXAMPLE:{SECRET}",
        f"region=us-east-1 credentials=iam: aws_secret_access_key={SECRET}",
        f"region=us-east-1 credentials=iam: {SECRET}",
        f"region=us-east-1 credentials=iam: {SECRET}=x",
        f"region=us-east-1 credentials={SECRET}",
        f"region=us-east-1 region={SECRET} credentials=iam:",
        f"credentials={SECRET}",
    ],
)
def test_a_dsn_holding_a_secret_is_not_echoed(dsn: str) -> None:
    message = error_of(dsn)
    assert SECRET not in message
    status, out, err = cli(["-ecs-dsn", dsn, "-uri", "a.jpg"])
    assert status == 2
    assert SECRET not in err + out


def test_an_unparsable_credentials_file_names_its_first_ten_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    path.write_text("[default]\n" + "".join(f"junk{n}\n" for n in range(11)))
    message = error_of(f"region=us-east-1 credentials={path}:default")
    assert "cannot parse lines 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)" in message
