"""wasmtime-py's own core-API tests, run against hwsim through an import shim (tests/wasmtime_py_compat/).

Each test listed ``pass`` in tests/wasmtime_py_compat/expected.txt must pass; a known failure that now
passes fails this test too, so the list of differences only shrinks, and only on purpose.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "wasmtime_py_compat"))
import harness  # noqa: E402


def test_expected_list_is_complete_and_well_formed():
    expected = harness.read_expected()
    assert set(status for status, _ in expected.values()) <= {"pass", "fail"}
    assert all(reason for status, reason in expected.values() if status == "fail"), "a known failure needs a reason"
    assert not set(expected) & set(harness.OUT_OF_SCOPE)


def test_wasmtime_py_core_api_tests_against_hwsim():
    data = harness.locate()
    if data is None:
        pytest.skip("wasmtime-py's tests are not here: python tests/wasmtime_py_compat/get_tests.py")
    results = harness.run(data)
    expected = harness.read_expected()
    regressed = [
        f"{t}: {r['reason']}"
        for t, r in results.items()
        if r["outcome"] != "passed" and expected.get(t, ("",))[0] == "pass"
    ]
    fixed = [t for t, r in results.items() if r["outcome"] == "passed" and expected.get(t, ("",))[0] == "fail"]
    unlisted = sorted(set(results) ^ set(expected))
    assert not regressed, "expected passes now fail:\n" + "\n".join(sorted(regressed))
    assert not fixed, "known failures now pass (move them to `pass` in expected.txt):\n" + "\n".join(sorted(fixed))
    assert not unlisted, "tests run but not listed, or listed but not run:\n" + "\n".join(unlisted)
