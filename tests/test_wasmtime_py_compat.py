"""wasmtime-py's own core-API tests, run against hwsim through an import shim (tests/wasmtime_py_compat/).

The tests are vendored as test data (tests/data/wasmtime_py/, with wasmtime-py's LICENSE).  Each test
listed ``pass`` in tests/wasmtime_py_compat/expected.txt must pass; a known failure that now passes
fails this test too, so the list of differences only shrinks, and only on purpose.
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "wasmtime_py_compat"))
import harness  # noqa: E402


def test_expected_list_is_complete_and_well_formed():
    expected = harness.read_expected()
    assert set(status for status, _ in expected.values()) <= {"pass", "fail"}
    assert all(reason for status, reason in expected.values() if status == "fail"), "a known failure needs a reason"
    assert not set(expected) & set(harness.OUT_OF_SCOPE)


def test_vendored_tests_are_upstream_unchanged_with_their_license():
    readme = (harness.DATA / "README.md").read_text()
    assert "Apache-2.0 WITH" in readme and "LLVM-exception" in readme
    sums = dict((name, digest) for digest, name in re.findall(r"^([0-9a-f]{64})  (\S+)$", readme, re.M))
    assert "LICENSE" in sums and "test_engine.py" in sums
    on_disk = {p.name for p in harness.DATA.iterdir()} - {"README.md"}
    assert on_disk == set(sums)
    for name, digest in sums.items():
        assert hashlib.sha256((harness.DATA / name).read_bytes()).hexdigest() == digest, f"{name} was edited"


def test_compare_reports_a_regression_a_stale_failure_and_unlisted_tests():
    expected = {"a": ("pass", ""), "b": ("fail", "why"), "c": ("pass", "")}
    results = {
        "a": {"outcome": "failed", "reason": "AssertionError: boom"},
        "b": {"outcome": "passed", "reason": ""},
        "d": {"outcome": "passed", "reason": ""},
    }
    assert harness.compare(results, expected) == [
        "expected to pass, failed: a: AssertionError: boom",
        "known failure now passes (move it to `pass` in expected.txt): b",
        "run but not in expected.txt: d",
        "in expected.txt but not run: c",
    ]
    assert harness.compare({"a": {"outcome": "passed", "reason": ""}}, {"a": ("pass", "")}) == []


def test_a_failing_expected_pass_is_reported_end_to_end(tmp_path):
    """Through the real subprocess and shim: a test listed `pass` that fails (here against hwsim: a
    made-up wasmtime-py test) is reported with its first failure; one that passes is not."""
    (tmp_path / "test_engine.py").write_text(
        "import unittest\nfrom wasmtime import *\n\n\n"
        "class TestEngine(unittest.TestCase):\n"
        "    def test_smoke(self):\n        Engine().is_pulley()\n\n"
        "    def test_broken(self):\n        Engine().no_such_method()\n"
    )
    results = harness.run(tmp_path)
    expected = {
        "test_engine.py::TestEngine::test_smoke": ("pass", ""),
        "test_engine.py::TestEngine::test_broken": ("pass", ""),
    }
    assert harness.compare(results, expected) == [
        "expected to pass, failed: test_engine.py::TestEngine::test_broken: "
        "AttributeError: 'Engine' object has no attribute 'no_such_method'"
    ]


def test_wasmtime_py_core_api_tests_against_hwsim():
    data = harness.locate()
    assert data is not None, f"wasmtime-py's tests are missing from {harness.DATA} (they are vendored)"
    problems = harness.compare(harness.run(data), harness.read_expected())
    assert not problems, "\n".join(problems)
