"""The spec-test runner on the whole first conformance target (the suite's scope.txt): no regressions.

Per-file counts are compared with ``tests/data/spectest_scope_expected.json``,
for hwsim's engine (compiled to RISC-V, run on the emulated CPU), the
validate-only engine, and the wasmtime oracle.  After an
intended change, regenerate it with::

    HWSIM_UPDATE_SPECTEST_EXPECTATIONS=1 python -m pytest tests/test_spectest_scope.py

or, for a few scripts only (each engine runs just those; the other entries stay)::

    python tests/test_spectest_scope.py tag.wast throw.wast ...
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from wasm_conftest_helpers import locate_testsuite, oracle_engine_class, scope_files

from hwsim.spectest import PASSED, SKIPPED, SpecTestRunner
from hwsim.spectest.runner import TEXT_REJECTED

EXPECTED = Path(__file__).parent / "data" / "spectest_scope_expected.json"
UPDATE = os.environ.get("HWSIM_UPDATE_SPECTEST_EXPECTATIONS") == "1"


def _run(engine=None, engine_factory=None):
    suite = locate_testsuite()
    results = []
    for rel in scope_files():
        runner = SpecTestRunner(engine_factory() if engine_factory else engine)
        results.append(runner.run_file(suite / rel, name=rel))
    return results


@pytest.fixture(scope="module")
def validate_only():
    return _run()


@pytest.fixture(scope="module")
def with_hwsim():
    from hwsim.spectest.hwsim_engine import HwsimEngine

    return _run(engine_factory=HwsimEngine)


@pytest.fixture(scope="module")
def with_wasmtime():
    WasmtimeEngine = oracle_engine_class()
    return _run(engine_factory=WasmtimeEngine)


def _counts(results) -> dict:
    return {r.name: {"passed": r.passed, "failed": r.failed, "skipped": r.skipped} for r in results}


def _compare(key: str, results) -> None:
    actual = _counts(results)
    expected = json.loads(EXPECTED.read_text()) if EXPECTED.exists() else {}
    if UPDATE:
        expected[key] = actual
        EXPECTED.parent.mkdir(exist_ok=True)
        EXPECTED.write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
        return
    assert key in expected, f"no expectations for {key}: run with HWSIM_UPDATE_SPECTEST_EXPECTATIONS=1"
    diffs = [
        f"{name}: expected {expected[key].get(name)}, got {counts}"
        for name, counts in actual.items()
        if expected[key].get(name) != counts
    ]
    missing = sorted(set(expected[key]) - set(actual))
    assert not diffs and not missing, "\n".join(diffs + [f"{m}: not run" for m in missing])


def test_missing_testsuite_fails_loudly(monkeypatch, tmp_path):
    import wasm_conftest_helpers as helpers

    monkeypatch.delenv("HWSIM_WASM_TESTSUITE", raising=False)
    monkeypatch.setattr(helpers, "REPO", tmp_path / "repo")
    monkeypatch.setattr(helpers, "FALLBACK_TESTSUITE", tmp_path / "nowhere")
    with pytest.raises(pytest.fail.Exception, match="WebAssembly spec test suite not found: set HWSIM_WASM_TESTSUITE"):
        helpers.locate_testsuite()
    monkeypatch.setenv("HWSIM_WASM_TESTSUITE", str(tmp_path))
    with pytest.raises(pytest.fail.Exception, match="is not the WebAssembly spec test suite"):
        helpers.locate_testsuite()


def test_scope_has_161_scripts_and_106_of_hwsims_own():
    """The suite's scope.txt, then tests/data/spectest_scope_more.txt (custom-page-sizes, wide arithmetic,
    threads, SIMD, relaxed SIMD, exception handling, typed function references, GC and switch.wast):
    with scope.txt, every top-level script of the suite (257) and ten proposals' scripts."""
    files = scope_files()
    assert len(files) == 161 + 106
    more = files[161:]
    assert [f for f in more if f.startswith("proposals/")] == more[:10]
    assert len([f for f in more if f.startswith("proposals/threads/")]) == 4
    assert len([f for f in more if f.startswith("simd_")]) == 59
    assert len([f for f in more if "relaxed" in f]) == 7
    assert more[-30:-26] == ["tag.wast", "throw.wast", "throw_ref.wast", "try_table.wast"]
    assert more[-21:-19] == ["type-canon.wast", "type-equivalence.wast"]
    assert more[-1] == "switch.wast"
    assert len({f for f in files if "/" not in f}) == 257
    assert more[-26:-21] == [
        "call_ref.wast",
        "return_call_ref.wast",
        "ref_as_non_null.wast",
        "br_on_null.wast",
        "br_on_non_null.wast",
    ]


def test_no_failures_validate_only(validate_only):
    failures = [
        f"{r.name}:{o.line} {o.command}: {o.reason}" for r in validate_only for o in r.outcomes if o.status == "failed"
    ]
    assert failures == []


def test_counts_match_expectations_validate_only(validate_only):
    _compare("validate-only", validate_only)


def test_every_binary_malformed_and_invalid_assertion_passes(validate_only):
    """Each assert_malformed / assert_invalid passes, except those using out-of-scope features."""
    tally = {}
    for r in validate_only:
        for o in r.outcomes:
            if o.command not in ("assert_malformed", "assert_invalid"):
                continue
            if o.status == PASSED and o.reason == TEXT_REJECTED:
                key = "text"  # rejected by wasm-tools' text parser, hwsim's text front end
            elif o.status == PASSED:
                key = "passed"
            elif o.status == SKIPPED and o.reason.startswith("unsupported feature: "):
                key = "unsupported"
            else:
                pytest.fail(f"{r.name}:{o.line} {o.command} {o.status}: {o.reason}")
            tally[(o.command, key)] = tally.get((o.command, key), 0) + 1
    # The counts reported in docs/wasm-frontend.md.
    assert tally == {
        ("assert_malformed", "passed"): 822,
        ("assert_malformed", "text"): 1252,
        ("assert_invalid", "passed"): 2835,
    }


def test_no_failures_with_wasmtime(with_wasmtime):
    failures = [
        f"{r.name}:{o.line} {o.command}: {o.reason}" for r in with_wasmtime for o in r.outcomes if o.status == "failed"
    ]
    assert failures == []


def test_counts_match_expectations_with_wasmtime(with_wasmtime):
    _compare("wasmtime", with_wasmtime)


def test_no_failures_on_hwsim(with_hwsim):
    failures = [
        f"{r.name}:{o.line} {o.command}: {o.reason}" for r in with_hwsim for o in r.outcomes if o.status == "failed"
    ]
    assert failures == []


def test_counts_match_expectations_on_hwsim(with_hwsim):
    _compare("hwsim", with_hwsim)


def test_hwsim_runs_everything_wasmtime_runs(with_hwsim, with_wasmtime):
    """Nothing the oracle executes is skipped by hwsim's engine (per file, passed >= the oracle's)."""
    ours = {r.name: r.passed for r in with_hwsim}
    behind = {r.name: (ours[r.name], r.passed) for r in with_wasmtime if ours[r.name] < r.passed}
    assert behind == {}


def update_scripts(names: list[str]) -> None:
    """Rewrite the expectations of the scripts ``names`` (relative to the suite) for every engine."""
    from hwsim.spectest.hwsim_engine import HwsimEngine

    suite = locate_testsuite()
    expected = json.loads(EXPECTED.read_text())
    for key, factory in (("validate-only", None), ("hwsim", HwsimEngine), ("wasmtime", oracle_engine_class())):
        for rel in names:
            r = SpecTestRunner(factory() if factory else None).run_file(suite / rel, name=rel)
            expected[key][rel] = {"passed": r.passed, "failed": r.failed, "skipped": r.skipped}
            print(key, rel, expected[key][rel])
    EXPECTED.write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    import sys

    update_scripts(sys.argv[1:])
