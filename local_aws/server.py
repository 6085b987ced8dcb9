"""moto's server, started in this process on a free localhost port.

In-process on purpose: the Lambda runner and the task runner patch moto and read its backends,
which only works when the server's backends live in the same interpreter.
"""

from __future__ import annotations

import logging
import os
import socket
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

#: moto's default account; every ARN the emulator makes carries it.
ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"
#: moto accepts any credentials; these make it obvious in logs that nothing reaches AWS.
TEST_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
# Variables of the caller's environment that would point a child process at a real account.
_AWS_VARIABLES_TO_DROP = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


@dataclass(frozen=True)
class EmbeddedAws:
    """Where the emulator listens and how to talk to it."""

    endpoint_url: str
    port: int
    region: str = DEFAULT_REGION
    account_id: str = ACCOUNT_ID

    def aws_env(self) -> dict[str, str]:
        """The variables that point an AWS SDK or CLI at the emulator."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            **TEST_CREDENTIALS,
        }

    def child_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """This process's environment, minus any real-account settings, plus `aws_env()`."""
        env = {k: v for k, v in os.environ.items() if k not in _AWS_VARIABLES_TO_DROP}
        env.update(self.aws_env())
        env.update(extra or {})
        return env

    def client(self, service: str, read_timeout: float | None = None) -> Any:
        """A boto3 client for `service` against the emulator (`read_timeout`: botocore's, 60 s)."""
        config = Config(read_timeout=read_timeout) if read_timeout else None
        session = boto3.session.Session(
            aws_access_key_id=TEST_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=TEST_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=TEST_CREDENTIALS["AWS_SESSION_TOKEN"],
            region_name=self.region,
        )
        return session.client(service, endpoint_url=self.endpoint_url, config=config)

    def reset(self) -> None:
        """Forget every resource (moto's `POST /moto-api/reset`)."""
        request = urllib.request.Request(  # noqa: S310 - always our own http://localhost URL
            f"{self.endpoint_url}/moto-api/reset", method="POST", data=b""
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            response.read()


def free_localhost_port() -> int:
    """A TCP port that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def moto_server(region: str = DEFAULT_REGION, port: int | None = None) -> Iterator[EmbeddedAws]:
    """Run moto's server in a thread for the duration of the `with` block, on `port` (default:
    a free one).

    The server stops when the block ends, whether normally, on an error or on Ctrl-C.
    """
    port = port or free_localhost_port()
    # One access-log line per request would drown the demo's output.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    # moto puts MOTO_PORT into the environment of the Lambda functions it runs and into the
    # response URL of CloudFormation custom resources; set it before anything is deployed.
    previous_port = os.environ.get("MOTO_PORT")
    os.environ["MOTO_PORT"] = str(port)
    server.start()
    try:
        yield EmbeddedAws(endpoint_url=f"http://localhost:{port}", port=port, region=region)
    finally:
        server.stop()
        if previous_port is None:
            os.environ.pop("MOTO_PORT", None)
        else:
            os.environ["MOTO_PORT"] = previous_port
