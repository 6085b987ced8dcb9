"""The seed's go-whosonfirst-aws DSNs: ``region=R credentials=C`` → a boto3 Session.

``credentials`` is one of:

* ``iam:`` - the default credential chain (an IAM role in Lambda/ECS/EC2);
* ``env:`` - only the ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` (+ ``AWS_SESSION_TOKEN``)
  environment variables;
* ``PATH:PROFILE`` - the ``PROFILE`` section of the ini-style credentials file ``PATH``;
* ``PROFILE`` - the ``PROFILE`` section of the default AWS credentials/config files.
"""

from __future__ import annotations

import configparser
import os.path
from dataclasses import dataclass

import boto3
import botocore.session
from botocore.exceptions import ProfileNotFound

from .clients import new_session

KNOWN_KEYS = ("region", "credentials")
EXPECTED = "'region=R credentials=C'"


class DsnError(ValueError):
    """The DSN cannot be used; the message says why."""


@dataclass(frozen=True)
class Dsn:
    """A parsed DSN."""

    region: str
    credentials: str


def parse_dsn(text: str) -> Dsn:
    """Parse ``key=value`` pairs separated by spaces; ``region`` and ``credentials`` required.

    Errors never quote the DSN or its values: a DSN may hold a secret (a pasted access key).
    """
    values: dict[str, str] = {}
    parts = text.split()
    for number, part in enumerate(parts, start=1):
        key, sep, value = part.partition("=")
        where = f"DSN part {number} of {len(parts)}"
        if not sep or not key:
            raise DsnError(f"{where} is not a key=value pair (expected {EXPECTED})")
        if key not in KNOWN_KEYS:
            raise DsnError(f"{where} has an unknown key (known: {', '.join(KNOWN_KEYS)})")
        if key in values:
            raise DsnError(f"DSN: {key!r} given twice")
        values[key] = value
    for key in KNOWN_KEYS:
        if not values.get(key):
            raise DsnError(f"DSN: missing {key}=... (expected {EXPECTED})")
    return Dsn(region=values["region"], credentials=values["credentials"])


def session_from_dsn(text: str) -> boto3.Session:
    """A boto3 Session for the DSN's region and credentials.

    Errors name the credentials file and the problem; never a profile name, a line of the file
    or any other value that may be a secret.
    """
    dsn = parse_dsn(text)
    credentials = dsn.credentials
    if credentials == "iam:":
        return new_session(region_name=dsn.region)
    if credentials == "env:":
        return _env_session(dsn.region)
    path, sep, profile = credentials.rpartition(":")
    if sep:
        if not path or not profile:
            raise DsnError(
                "unsupported credentials=...: expected iam:, env:, PATH:PROFILE or PROFILE"
            )
        return _file_session(dsn.region, path, profile)
    try:
        return new_session(region_name=dsn.region, profile_name=credentials)
    except ProfileNotFound:
        raise DsnError(
            "credentials=PROFILE: no such profile in the AWS config or credentials file"
        ) from None


def _env_session(region: str) -> boto3.Session:
    # Only botocore's environment provider: never fall back to files or roles.
    provider = botocore.session.Session().get_component("credential_provider").get_provider("env")
    found = provider.load()
    if found is None:
        raise DsnError(
            "credentials=env: but AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not both set"
        )
    return new_session(
        region_name=region,
        aws_access_key_id=found.access_key,
        aws_secret_access_key=found.secret_key,
        aws_session_token=found.token,
    )


def _file_session(region: str, path: str, profile: str) -> boto3.Session:
    where = f"credentials=PATH:PROFILE: {path!r}"
    expanded = os.path.expanduser(path)
    if not os.path.isfile(expanded):
        raise DsnError(f"{where}: no such file")
    # No interpolation: a '%' in a secret would otherwise raise an error that quotes the value.
    parser = configparser.RawConfigParser()
    try:
        with open(expanded, encoding="utf-8") as handle:
            parser.read_file(handle)
    except OSError as error:
        raise DsnError(f"{where}: cannot be read ({error.strerror})") from None
    except UnicodeDecodeError:
        raise DsnError(f"{where}: is not UTF-8 text, so not an INI credentials file") from None
    except configparser.Error as error:
        # configparser's messages quote the offending lines, which may be secrets.
        raise DsnError(f"{where}: {_ini_problem(error)}") from None
    section = profile if parser.has_section(profile) else f"profile {profile}"
    if not parser.has_section(section):
        raise DsnError(f"{where}: no section for the profile given after the last ':'")
    key_id = parser.get(section, "aws_access_key_id", fallback="")
    secret = parser.get(section, "aws_secret_access_key", fallback="")
    if not key_id or not secret:
        raise DsnError(
            f"{where}: the profile's section lacks aws_access_key_id or aws_secret_access_key"
        )
    return new_session(
        region_name=region,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        aws_session_token=parser.get(section, "aws_session_token", fallback=None) or None,
    )


def _ini_problem(error: configparser.Error) -> str:
    """What is wrong with an INI file, by line number only."""
    if isinstance(error, configparser.MissingSectionHeaderError):
        return f"is not an INI credentials file (line {error.lineno} comes before any [section])"
    if isinstance(error, configparser.ParsingError):
        numbers = [str(number) for number, _ in error.errors[:10]]
        lines = ("line " if len(numbers) == 1 else "lines ") + ", ".join(numbers)
        return f"is not an INI credentials file (cannot parse {lines})"
    lineno = getattr(error, "lineno", None)
    at = f" at line {lineno}" if lineno else ""
    return f"is not a valid INI credentials file ({type(error).__name__}{at})"
