"""The tools' command line, parsed as Go's flag package does, and their help text (issue #13)."""

from __future__ import annotations

import pytest
from iiif_process.arguments import UsageError, count, parse, usage
from iiif_process.errors import ConfigError

FLAGS = {"a": (True, "takes a value"), "b": (False, "a boolean")}


def test_the_help_starts_with_the_tools_description() -> None:
    assert usage("  Seed tiles.\n", {}).startswith("Seed tiles.\n\nFlags:")


def test_without_a_description_the_help_is_the_flags() -> None:
    # Under python -OO docstrings are None.
    assert usage(None, {"x": (False, "do x")}) == "\n\nFlags:\n  -x\n        do x"


def test_a_flag_that_takes_a_value_says_so() -> None:
    assert usage("T", {"n": (True, "how many")}).endswith("  -n VALUE\n        how many")


def test_a_value_follows_its_flag_or_an_equals_sign() -> None:
    args = parse(["-a", "1", "--a=2", "k"], FLAGS)
    assert (args.values["a"], args.positional) == (["1", "2"], ["k"])


def test_a_double_dash_ends_the_flags() -> None:
    assert parse(["-b", "--", "-a", "x"], FLAGS).positional == ["-a", "x"]


def test_a_lone_dash_is_positional() -> None:
    assert parse(["-", "-b"], FLAGS).positional == ["-", "-b"]


def test_three_dashes_are_no_flag() -> None:
    with pytest.raises(UsageError, match="flag provided but not defined: ---a"):
        parse(["---a", "1"], FLAGS)


def test_an_unknown_flag_is_named_without_its_value() -> None:
    with pytest.raises(UsageError, match=r"flag provided but not defined: -c$"):
        parse(["-c=1"], FLAGS)


def test_a_value_flag_at_the_end_is_missing_its_value() -> None:
    with pytest.raises(UsageError, match="flag needs an argument: -a"):
        parse(["-a"], FLAGS)


@pytest.mark.parametrize(("given", "value"), [("-b", True), ("-b=false", False), ("-b=T", True)])
def test_a_boolean_flag_reads_gos_words(given: str, value: bool) -> None:
    assert parse([given], FLAGS).flag("b") is value


def test_a_boolean_flag_not_given_is_false() -> None:
    assert parse([], FLAGS).flag("b") is False


def test_a_boolean_flag_refuses_other_words() -> None:
    with pytest.raises(UsageError, match="invalid boolean value 'maybe' for -b"):
        parse(["-b=maybe"], FLAGS)


def test_a_count_of_zero_is_zero() -> None:
    assert count(parse(["-max-pixels", "0"], {"max-pixels": (True, "")}), {}, "max-pixels") == 0


def test_a_negative_count_is_refused_naming_the_flag() -> None:
    args = parse(["-max-pixels", "-1"], {"max-pixels": (True, "")})
    with pytest.raises(ConfigError, match="-max-pixels must not be negative, not '-1'"):
        count(args, {}, "max-pixels")


def test_a_count_falls_back_to_the_environment() -> None:
    assert count(parse([], {"max-pixels": (True, "")}), {"max-pixels": "7"}, "max-pixels") == 7


def test_a_count_set_nowhere_is_none() -> None:
    assert count(parse([], {"max-pixels": (True, "")}), {}, "max-pixels") is None
