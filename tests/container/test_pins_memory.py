"""The memory gate: its budget is the one it is given (never less than one byte), and when a
decode may start beside others (issue #13)."""

from __future__ import annotations

import pytest
from iiif_process.memory import MemoryGate, OverBudgetError, admits


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


def test_a_decode_that_fits_exactly_beside_the_held_ones_is_admitted() -> None:
    assert admits(3, 2, 5) is True


def test_a_decode_that_does_not_fit_beside_the_held_ones_waits() -> None:
    assert admits(1, 5, 5) is False


def test_with_nothing_held_any_decode_is_admitted() -> None:
    # An image of the whole budget (or more: check_fits refuses that first) runs alone.
    assert admits(0, 6, 5) is True
