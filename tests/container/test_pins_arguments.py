"""The tools' help text: their description, then each flag (issue #13)."""

from __future__ import annotations

from iiif_process.arguments import usage


def test_the_help_starts_with_the_tools_description() -> None:
    assert usage("  Seed tiles.\n", {}).startswith("Seed tiles.\n\nFlags:")


def test_without_a_description_the_help_is_the_flags() -> None:
    # Under python -OO docstrings are None.
    assert usage(None, {"x": (False, "do x")}) == "\n\nFlags:\n  -x\n        do x"


def test_a_flag_that_takes_a_value_says_so() -> None:
    assert usage("T", {"n": (True, "how many")}).endswith("  -n VALUE\n        how many")
