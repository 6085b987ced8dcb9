"""boto3 clients created on first use, so that a run that never needs a service never makes one."""

from __future__ import annotations

from typing import Any


class LazyClient:
    """Stands for ``session.client(service)`` (or ``boto3.client``) until first used."""

    def __init__(self, service: str, session: Any = None) -> None:
        self._service = service
        self._session = session
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            if self._session is not None:
                self._client = self._session.client(self._service)
            else:
                import boto3

                self._client = boto3.client(self._service)
        return self._client

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)
