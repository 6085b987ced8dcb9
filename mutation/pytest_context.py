"""A pytest plugin of the coverage run: names the running test in the environment.

Coverage's ``test_function`` context sees only the process that runs pytest. A child process
started by a test (a batch's worker, ``iiif-process`` run as a command) starts coverage itself
(``COVERAGE_PROCESS_START``) and reads the same configuration, whose static context is
``${MUTATION_TEST_CONTEXT}``: it inherits this variable from the test that started it, so the
lines it runs are credited to that test.
"""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest

VARIABLE = "MUTATION_TEST_CONTEXT"


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
