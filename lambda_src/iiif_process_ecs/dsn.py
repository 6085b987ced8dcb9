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

KNOWN_KEYS = ("region", "credentials")


class DsnError(ValueError):
    """The DSN cannot be used; the message says why."""


@dataclass(frozen=True)
class Dsn:
    """A parsed DSN."""

    region: str
    credentials: str


def parse_dsn(text: str) -> Dsn:
    """Parse ``key=value`` pairs separated by spaces; ``region`` and ``credentials`` required."""
    values: dict[str, str] = {}
    for part in text.split():
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise DsnError(f"DSN {text!r}: {part!r} is not a key=value pair")
        if key not in KNOWN_KEYS:
            raise DsnError(f"DSN {text!r}: unknown key {key!r} (known: {', '.join(KNOWN_KEYS)})")
        if key in values:
            raise DsnError(f"DSN {text!r}: {key!r} given twice")
        values[key] = value
    for key in KNOWN_KEYS:
        if not values.get(key):
            raise DsnError(f"DSN {text!r}: missing {key}=... (expected 'region=R credentials=C')")
    return Dsn(region=values["region"], credentials=values["credentials"])


def session_from_dsn(text: str) -> boto3.Session:
    """A boto3 Session for the DSN's region and credentials."""
    dsn = parse_dsn(text)
    credentials = dsn.credentials
    if credentials == "iam:":
        return boto3.Session(region_name=dsn.region)
    if credentials == "env:":
        return _env_session(dsn.region)
    path, sep, profile = credentials.rpartition(":")
    if sep:
        if not path or not profile:
            raise DsnError(
                f"unsupported credentials {credentials!r}: expected iam:, env:, PATH:PROFILE "
                "or PROFILE"
            )
        return _file_session(dsn.region, path, profile)
    try:
        return boto3.Session(region_name=dsn.region, profile_name=credentials)
    except ProfileNotFound:
        raise DsnError(
            f"credentials={credentials}: no profile {credentials!r} in the AWS config or "
            "credentials file"
        ) from None


def _env_session(region: str) -> boto3.Session:
    # Only botocore's environment provider: never fall back to files or roles.
    provider = botocore.session.Session().get_component("credential_provider").get_provider("env")
    found = provider.load()
    if found is None:
        raise DsnError(
            "credentials=env: but AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not both set"
        )
    return boto3.Session(
        region_name=region,
        aws_access_key_id=found.access_key,
        aws_secret_access_key=found.secret_key,
        aws_session_token=found.token,
    )


def _file_session(region: str, path: str, profile: str) -> boto3.Session:
    expanded = os.path.expanduser(path)
    if not os.path.isfile(expanded):
        raise DsnError(f"credentials={path}:{profile}: no such file {path!r}")
    parser = configparser.ConfigParser()
    try:
        parser.read(expanded, encoding="utf-8")
    except configparser.Error as error:
        raise DsnError(f"credentials={path}:{profile}: cannot parse {path!r}: {error}") from None
    section = profile if parser.has_section(profile) else f"profile {profile}"
    if not parser.has_section(section):
        raise DsnError(f"credentials={path}:{profile}: no [{profile}] section in {path!r}")
    key_id = parser.get(section, "aws_access_key_id", fallback="")
    secret = parser.get(section, "aws_secret_access_key", fallback="")
    if not key_id or not secret:
        raise DsnError(
            f"credentials={path}:{profile}: [{profile}] in {path!r} lacks aws_access_key_id "
            "or aws_secret_access_key"
        )
    return boto3.Session(
        region_name=region,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        aws_session_token=parser.get(section, "aws_session_token", fallback=None) or None,
    )
