"""The order the suite runs in (tests/conftest.py): the slow explorations first."""

from __future__ import annotations

from types import SimpleNamespace

from tests.conftest import pytest_collection_modifyitems


def test_the_slowest_files_run_first_and_every_other_test_keeps_its_place():
    nodeids = [
        "tests/components/test_a.py::test_one",
        "tests/runtime/test_interleavings.py::test_two[0]",
        "tests/components/test_a.py::test_three",
        "tests/runtime/test_interleavings_tasks.py::test_four",
        "tests/runtime/test_interleavings.py::test_two[1]",
        "tests/runtime/test_rollout.py::test_five",
    ]
    items = [SimpleNamespace(nodeid=n) for n in nodeids]
    pytest_collection_modifyitems(items)
    assert [i.nodeid for i in items] == [
        "tests/runtime/test_interleavings_tasks.py::test_four",
        "tests/runtime/test_interleavings.py::test_two[0]",
        "tests/runtime/test_interleavings.py::test_two[1]",
        "tests/components/test_a.py::test_one",
        "tests/components/test_a.py::test_three",
        "tests/runtime/test_rollout.py::test_five",
    ]
