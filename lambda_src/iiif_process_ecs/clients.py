"""boto3 sessions whose clients all retry the same, explicit way, and clients made on first use.

Every client of the Lambda and the CLI uses botocore's ``standard`` retry mode (throttling,
5xx and connection errors retried with exponential backoff and jitter, a fixed number of
attempts), so that no loop of ours retries the same error a second time over: our own loops
handle only what botocore cannot see (RunTask's ``failures[]``, the Lambda's deadline).
"""

from __future__ import annotations

from typing import Any

import boto3
import botocore.session
from botocore.config import Config

RETRY_MODE = "standard"
MAX_ATTEMPTS = 3  # botocore's count: the first call and two retries
CLIENT_CONFIG = Config(retries={"mode": RETRY_MODE, "total_max_attempts": MAX_ATTEMPTS})
# For a client whose every call goes through a retry loop of ours (the ledger's), so that a
# throttled call is not retried by both.
NO_BOTOCORE_RETRIES = Config(retries={"mode": RETRY_MODE, "total_max_attempts": 1})


def new_session(**kwargs: Any) -> boto3.Session:
    """``boto3.Session(**kwargs)`` whose clients default to :data:`CLIENT_CONFIG`."""
    core = botocore.session.get_session()
    core.set_default_client_config(CLIENT_CONFIG)
    return boto3.Session(botocore_session=core, **kwargs)


class LazyClient:
    """Stands for ``session.client(service)`` (a :func:`new_session` when no session is given)
    until first used."""

    def __init__(self, service: str, session: Any = None) -> None:
        self._service = service
        self._session = session
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            session = self._session if self._session is not None else new_session()
            self._client = session.client(self._service)
        return self._client

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)
