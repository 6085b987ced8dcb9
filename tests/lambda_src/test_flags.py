"""flags.py: the Go-style command line and the IIIF_PROCESS_* environment, as the seed's tool."""

from __future__ import annotations

import pytest
from iiif_process_ecs.flags import Flag, FlagError, HelpRequested, parse_flags, usage

FLAGS = (
    Flag("name", "string", "", "A name."),
    Flag("mode", "string", "task", "The mode."),
    Flag("wait", "bool", False, "Wait."),
    Flag("count", "int", 50, "A count."),
    Flag("timeout", "float", 1.5, "Seconds."),
    Flag("subnet", "list", [], "Subnets."),
    Flag("uri", "list", [], "URIs.", split_commas=False),
)


def values(*argv: str, **environ: str) -> dict[str, object]:
    return parse_flags(FLAGS, argv, environ=environ).values


def test_a_list_flag_splits_commas_by_default() -> None:
    assert values("-subnet", "a, b,,c")["subnet"] == ["a", "b", "c"]


def test_a_list_flag_can_keep_commas() -> None:
    assert values("-uri", "a,b.jpg")["uri"] == ["a,b.jpg"]


def test_a_repeated_list_flag_collects_every_value() -> None:
    assert values("-uri", "a.jpg", "-uri", "b.jpg")["uri"] == ["a.jpg", "b.jpg"]


def test_the_first_argument_is_parsed() -> None:
    assert values("-name", "x")["name"] == "x"


def test_two_dashes_work_as_one() -> None:
    assert values("--name", "x", "--count=3")["count"] == 3


def test_a_value_may_follow_an_equals_sign() -> None:
    assert values("-name=a=b")["name"] == "a=b"


def test_a_bool_flag_alone_is_true() -> None:
    assert values("-wait")["wait"] is True


def test_a_bool_flag_takes_a_value_after_an_equals_sign() -> None:
    assert values("-wait=false")["wait"] is False


def test_a_bool_flag_does_not_take_the_next_argument() -> None:
    with pytest.raises(FlagError, match="unexpected argument 'false'"):
        values("-wait", "false")


def test_an_int_flag_is_converted() -> None:
    assert values("-count", "7")["count"] == 7


def test_an_int_flag_refuses_a_fraction() -> None:
    with pytest.raises(FlagError, match=r"invalid value '1.5' for flag -count: want int"):
        values("-count", "1.5")


def test_a_float_flag_is_converted() -> None:
    assert values("-timeout", "2.5")["timeout"] == 2.5


@pytest.mark.parametrize("raw", ["nan", "inf", "-inf"])
def test_a_float_flag_refuses_non_finite_numbers(raw: str) -> None:
    with pytest.raises(FlagError, match="want a finite number"):
        values(f"-timeout={raw}")


def test_a_string_flag_keeps_its_value_as_given() -> None:
    assert values("-name", " 07 ")["name"] == " 07 "


def test_a_double_dash_ends_the_flags() -> None:
    assert values("-name", "x", "--")["name"] == "x"


def test_an_argument_after_a_double_dash_is_refused() -> None:
    with pytest.raises(FlagError, match=r"unexpected argument 'a\.jpg'"):
        values("--", "a.jpg")


def test_a_value_without_its_flag_is_refused() -> None:
    with pytest.raises(FlagError, match="every value needs its flag"):
        values("a.jpg")


def test_a_lone_dash_is_refused() -> None:
    with pytest.raises(FlagError, match="unexpected argument '-'"):
        values("-")


@pytest.mark.parametrize("arg", ["-h", "-help", "--help"])
def test_help_is_asked_for(arg: str) -> None:
    with pytest.raises(HelpRequested):
        values(arg)


def test_an_unknown_flag_is_named() -> None:
    with pytest.raises(FlagError, match="flag provided but not defined: -colour"):
        values("-colour", "red")


def test_a_flag_without_its_value_is_named() -> None:
    with pytest.raises(FlagError, match="flag needs an argument: -name"):
        values("-name")


def test_unset_flags_come_from_the_environment() -> None:
    parsed = parse_flags(FLAGS, [], environ={"IIIF_PROCESS_COUNT": " 9 "})
    assert (parsed.values["count"], parsed.origin["count"]) == (9, "environment")


def test_the_command_line_beats_the_environment() -> None:
    assert values("-count", "1", IIIF_PROCESS_COUNT="9")["count"] == 1


def test_a_blank_variable_leaves_the_default() -> None:
    parsed = parse_flags(FLAGS, [], environ={"IIIF_PROCESS_MODE": "  "})
    assert (parsed.values["mode"], parsed.origin["mode"]) == ("task", "default")


def test_a_list_variable_is_comma_separated() -> None:
    assert values(IIIF_PROCESS_SUBNET="a,b")["subnet"] == ["a", "b"]


def test_dashes_become_underscores_in_variable_names() -> None:
    flags = (Flag("log-group", "string", "", "A log group."),)
    parsed = parse_flags(flags, [], environ={"IIIF_PROCESS_LOG_GROUP": "/g"})
    assert parsed.values["log-group"] == "/g"


def test_without_an_environment_the_defaults_are_used() -> None:
    parsed = parse_flags(FLAGS, ["-wait"])
    assert (parsed.values["count"], parsed.origin["count"]) == (50, "default")


def test_a_default_list_is_a_fresh_copy() -> None:
    first = values()
    first["subnet"].append("x")  # type: ignore[attr-defined]
    assert values()["subnet"] == []


def test_usage_shows_a_non_empty_default() -> None:
    assert '  -mode string\n    \tThe mode. (default "task")\n' in usage("tool", FLAGS)


def test_usage_does_not_show_a_false_or_empty_default() -> None:
    text = usage("tool", FLAGS)
    assert "  -wait\n    \tWait.\n" in text and "  -name string\n    \tA name.\n" in text


@pytest.mark.parametrize("word", ["1", "t", "T", "TRUE", "true", "True"])
def test_gos_true_words_are_true(word: str) -> None:
    assert values(f"-wait={word}")["wait"] is True


@pytest.mark.parametrize("word", ["0", "f", "F", "FALSE", "false", "False"])
def test_gos_false_words_are_false(word: str) -> None:
    assert values(f"-wait={word}", IIIF_PROCESS_WAIT="true")["wait"] is False


@pytest.mark.parametrize("word", ["yes", "on", "tRUE", ""])
def test_other_words_are_not_booleans(word: str) -> None:
    with pytest.raises(FlagError, match="want bool"):
        values(f"-wait={word}")


def test_the_cli_stores_no_process_report_unless_asked() -> None:
    from iiif_process_ecs.cli import FLAGS as CLI_FLAGS

    assert parse_flags(CLI_FLAGS, [], environ={}).values["report"] is False
