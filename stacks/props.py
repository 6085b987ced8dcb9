"""Checks shared by the constructs' props (frozen dataclasses validated in `__post_init__`).

A construct states what it accepts on its own, whoever builds it: the stack maps the validated
`Settings` onto props, and a props object that breaks a construct's contract raises `ValueError`
naming the props class, the field and the accepted values. The bounds come from
`stacks.stack_settings`, so the settings and the constructs accept the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def _fail(props: object, field: str, value: Any, accepted: str) -> ValueError:
    return ValueError(
        f"{type(props).__name__}.{field} has the invalid value {value!r}; accepted: {accepted}"
    )


def check_range(props: object, field: str, bounds: tuple[int, int]) -> None:
    """`props.field` is a whole number (not a bool) within `bounds`, both ends included."""
    value = getattr(props, field)
    low, high = bounds
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _fail(props, field, value, f"a whole number from {low} to {high}")


def check_choice(props: object, field: str, choices: Iterable[Any]) -> None:
    """`props.field` is one of `choices` (compared with ==, bools never standing for ints)."""
    value = getattr(props, field)
    accepted = tuple(choices)
    if isinstance(value, bool) or value not in accepted:
        raise _fail(props, field, value, ", ".join(str(c) for c in accepted))


def check_bool(props: object, field: str) -> None:
    """`props.field` is True or False."""
    value = getattr(props, field)
    if not isinstance(value, bool):
        raise _fail(props, field, value, "True, False")


def check(props: object, field: str, ok: bool, accepted: str) -> None:
    """Raise unless `ok`; `accepted` says what `props.field` may be."""
    if not ok:
        raise _fail(props, field, getattr(props, field), accepted)
