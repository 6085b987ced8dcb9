"""LazyClient: a client made on first use, from the session it was given."""

from __future__ import annotations

import boto3
from iiif_process_ecs.clients import LazyClient


def test_a_lazy_client_is_made_from_the_session_given() -> None:
    lazy = LazyClient("sqs", boto3.Session(region_name="eu-west-3"))
    assert lazy.meta.region_name == "eu-west-3"


def test_a_lazy_client_is_made_once() -> None:
    lazy = LazyClient("sqs", boto3.Session(region_name="eu-west-3"))
    assert lazy.client is lazy.client
