"""The memory gate's budget is the one it is given, never less than one byte (issue #13)."""

from __future__ import annotations

import pytest
from iiif_process.memory import MemoryGate, OverBudgetError


def test_an_amount_over_the_budget_is_refused() -> None:
    gate = MemoryGate(1)
    with pytest.raises(OverBudgetError), gate.reserve(2):
        pass


def test_an_amount_of_the_whole_budget_is_admitted() -> None:
    gate = MemoryGate(5)
    with gate.reserve(5):
        assert gate.used == 5


def test_a_zero_budget_admits_one_byte() -> None:
    gate = MemoryGate(0)
    with gate.reserve(1):
        assert gate.used == 1


def test_a_zero_budget_refuses_two_bytes() -> None:
    gate = MemoryGate(0)
    with pytest.raises(OverBudgetError, match="over the memory budget"), gate.reserve(2):
        pass


def test_a_reservation_is_released_after_its_block() -> None:
    gate = MemoryGate(5)
    with gate.reserve(3):
        pass
    assert gate.used == 0
