"""A pytest plugin of the coverage run: names the running test in the environment.

Coverage's ``test_function`` context sees only the process that runs pytest. A child process
started by a test (a batch's worker, ``iiif-process`` run as a command) starts coverage itself
(``COVERAGE_PROCESS_START``) and reads the same configuration, whose static context is
``${MUTATION_TEST_CONTEXT}``: it inherits this variable from the test that started it, so the
lines it runs are credited to that test.

It also notes how long each test took (setup, call and teardown, its parameters summed) in the
JSON file :data:`DURATIONS` names, so that a mutant's tests can run the quickest first.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Generator

import pytest

VARIABLE = "MUTATION_TEST_CONTEXT"
DURATIONS = "MUTATION_TEST_DURATIONS"
_seconds: defaultdict[str, float] = defaultdict(float)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, object, object]:
    """Set :data:`VARIABLE` to the test's node id (without parameters) while it runs."""
    os.environ[VARIABLE] = item.nodeid.partition("[")[0]
    try:
        return (yield)
    finally:
        os.environ.pop(VARIABLE, None)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Add the phase's time to its test's."""
    _seconds[report.nodeid.partition("[")[0]] += report.duration


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Write the tests' times where :data:`DURATIONS` says (nowhere when it is not set)."""
    path = os.environ.get(DURATIONS)
    if path:
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(_seconds, handle)
