"""One retry loop per call: botocore's standard mode for every client, except the ledger's, whose
own loop retries throttling (so botocore must not retry underneath it)."""

from __future__ import annotations

import pytest
from iiif_process_ecs.clients import LazyClient, new_session
from iiif_process_ecs.ledger import Ledger


def test_every_session_client_retries_in_standard_mode_three_times() -> None:
    client = new_session(region_name="us-east-1").client("sqs")
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 3}


def test_a_lazy_client_without_a_session_retries_the_same_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client = LazyClient("ecs").client
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 3}


def test_the_ledgers_client_leaves_retrying_to_the_ledger() -> None:
    ledger = Ledger("t", session=new_session(region_name="us-east-1"))
    assert ledger.client.meta.config.retries == {"mode": "standard", "total_max_attempts": 1}
