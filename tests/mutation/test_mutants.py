"""The mutation run's mutant generator: which changes it makes, and where it makes none."""

from __future__ import annotations

from pathlib import Path

import pytest

from mutation.__main__ import read_accepted
from mutation.mutants import mutants_of
from mutation.runner import _test_file


def changes(source: str) -> set[tuple[str, str, str]]:
    return {(m.operator, m.original, m.replacement) for m in mutants_of("m.py", source)}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("ok = a < b\n", ("compare", "a < b", "(a <= b)")),
        ("ok = a >= b\n", ("compare", "a >= b", "(a > b)")),
        ("ok = a == b\n", ("compare", "a == b", "(a != b)")),
        ("ok = a in b\n", ("compare", "a in b", "(a not in b)")),
        ("ok = a is None\n", ("compare", "a is None", "(a is not None)")),
        ("limit = 50\n", ("number", "50", "51")),
        ("ratio = 0.5\n", ("number", "0.5", "1.5")),
        ("flag = True\n", ("bool", "True", "False")),
        ("ok = a and b\n", ("boolop", "a and b", "(a or b)")),
        ("ok = not a\n", ("not", "not a", "(a)")),
        ("n = a + b\n", ("arith", "a + b", "(a - b)")),
        ("n = a * b\n", ("arith", "a * b", "(a / b)")),
        ("if a:\n    raise ValueError\n", ("drop-check", "a", "False")),
    ],
)
def test_each_operator_makes_its_change(source: str, expected: tuple[str, str, str]) -> None:
    assert expected in changes(source)


def test_a_changed_default_argument_is_a_mutant() -> None:
    source = "def f(attempts: int = 3) -> int:\n    return attempts\n"
    assert ("number", "3", "4") in changes(source)


def test_an_if_that_neither_raises_nor_returns_is_no_dropped_check() -> None:
    assert not [c for c in changes("if a:\n    b = 1\n") if c[0] == "drop-check"]


@pytest.mark.parametrize(
    "source",
    [
        '"""Docstring 1 < 2."""\n',
        'log.info("x", extra={"n": 1 + 2})\n',
        'name = f"{a + 1}"\n',
        "def f(a: Literal[1]) -> Literal[2]:\n    pass\n",
        "@dataclass(frozen=True)\nclass C:\n    pass\n",
        "if TYPE_CHECKING:\n    x = 1\n",
        'if __name__ == "__main__":\n    main(1)\n',
        'text = "a" + "b"\n',
    ],
)
def test_no_mutant_where_nothing_behaves(source: str) -> None:
    assert changes(source) == set()


def test_a_mutant_applies_at_its_place_after_non_ascii_text() -> None:
    source = 'label = "café"; ok = a < b\n'
    [mutant] = [m for m in mutants_of("m.py", source) if m.operator == "compare"]
    assert mutant.apply(source) == 'label = "café"; ok = (a <= b)\n'


def test_a_multi_line_expression_is_replaced_whole() -> None:
    source = "ok = (\n    a\n    < b\n)\n"
    [mutant] = [m for m in mutants_of("m.py", source) if m.operator == "compare"]
    assert (mutant.line, mutant.apply(source)) == (2, "ok = (\n    (a <= b)\n)\n")


def test_a_mutants_key_tells_apart_equal_changes_on_other_lines() -> None:
    keys = {m.key for m in mutants_of("m.py", "a = f(True)\nb = g(True)\n")}
    assert keys == {"m.py|bool|True|False|a = f(True)", "m.py|bool|True|False|b = g(True)"}


def test_accepted_survivors_are_read_with_why(tmp_path: Path) -> None:
    path = tmp_path / "accepted.txt"
    path.write_text("# comment\n\nm.py|number|50|51\tthe page size is AWS's, not ours\n")
    assert read_accepted(path) == {"m.py|number|50|51": "the page size is AWS's, not ours"}


def test_a_coverage_context_names_its_pytest_node() -> None:
    context = "tests.mutation.test_mutants.test_a_coverage_context_names_its_pytest_node"
    assert _test_file(context) == (
        "tests/mutation/test_mutants.py::test_a_coverage_context_names_its_pytest_node"
    )


def test_a_stacks_mutant_runs_its_covering_tests_then_the_whole_stacks_folder() -> None:
    from mutation.__main__ import tests_for

    chosen = tests_for("stacks", {"tests/stacks/test_b.py::t", "tests/stacks/test_a.py::t"}, [])
    assert chosen == ["tests/stacks/test_a.py::t", "tests/stacks/test_b.py::t", "tests/stacks"]


def test_a_container_mutant_runs_only_its_covering_tests() -> None:
    from mutation.__main__ import tests_for

    chosen = tests_for("container/iiif_process", {"tests/container/test_a.py::t"}, ["x"])
    assert chosen == ["tests/container/test_a.py::t"]


def test_a_mutant_no_test_covers_runs_the_fallback() -> None:
    from mutation.__main__ import tests_for

    assert tests_for("lambda_src/iiif_process_ecs", set(), ["tests/lambda_src/test_x.py"]) == [
        "tests/lambda_src/test_x.py"
    ]
