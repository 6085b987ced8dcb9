"""A held event source mapping (local_aws/sqs_batches.py): the holder gets every message sent
inside the hold, even when a poller had read "Enabled" a moment before it was disabled."""

from __future__ import annotations

import threading

import pytest

from local_aws.sqs_batches import DeliveryHolds


def test_a_held_mappings_poller_starts_no_delivery() -> None:
    holds = DeliveryHolds()
    holds.hold("m-1")

    assert holds.begin("m-1") is False


def test_another_mappings_poller_still_delivers() -> None:
    holds = DeliveryHolds()
    holds.hold("m-1")

    assert holds.begin("m-2") is True


def test_a_released_mappings_poller_delivers_again() -> None:
    holds = DeliveryHolds()
    holds.hold("m-1")
    holds.release("m-1")

    assert holds.begin("m-1") is True


def test_a_hold_waits_for_the_delivery_under_way_to_end() -> None:
    holds = DeliveryHolds()
    assert holds.begin("m-1")
    order: list[str] = []
    holder = threading.Thread(target=lambda: (holds.hold("m-1", timeout=30), order.append("held")))
    holder.start()
    holder.join(0.2)
    order.append("delivery ended")
    holds.end("m-1")
    holder.join(30)

    assert order == ["delivery ended", "held"]


def test_a_delivery_that_never_ends_is_named() -> None:
    holds = DeliveryHolds()
    assert holds.begin("m-1")

    with pytest.raises(TimeoutError, match="mapping m-1 did not end"):
        holds.hold("m-1", timeout=0.05)
