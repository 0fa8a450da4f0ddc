"""Run wasmtime-py's core-API tests against hwsim (or wasmtime-py itself) and compare with expected.txt.

    python tests/wasmtime_py_compat/harness.py            # hwsim: the count and every failure
    python tests/wasmtime_py_compat/harness.py wasmtime   # the same tests against wasmtime-py
    python tests/wasmtime_py_compat/harness.py --update   # rewrite expected.txt from this run

The tests are wasmtime-py's own (tests/data/wasmtime_py/, see get_tests.py), run in a subprocess whose
``wasmtime`` module is hwsim (shim.py).  ``expected.txt`` lists every test: ``pass`` or ``fail`` with
the reason; tests/test_wasmtime_py_compat.py fails when an expected pass fails, or when a known failure
passes (then the list is out of date: move it to ``pass``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
EXPECTED = HERE / "expected.txt"
# Tests left out (none since WASI preview 1 came, issue 19: test_define_wasi and test_wasi_exit run).
OUT_OF_SCOPE: tuple[str, ...] = ()


DATA = REPO / "tests" / "data" / "wasmtime_py"


def locate() -> Path | None:
    """$HWSIM_WASMTIME_PY_TESTS (another release's tests, say), else the vendored tests/data/wasmtime_py."""
    path = Path(os.environ.get("HWSIM_WASMTIME_PY_TESTS") or DATA)
    return path if (path / "test_engine.py").is_file() else None


def run(data: Path, target: str = "hwsim", timeout: float = 600) -> dict[str, dict[str, str]]:
    """Outcomes by test id (``test_func.py::TestFunc::test_add``): ``{"outcome", "reason"}``."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "results.json"
        ini = Path(tmp) / "pytest.ini"
        ini.write_text("[pytest]\n")
        env = dict(os.environ, HWSIM_COMPAT_TARGET=target, HWSIM_COMPAT_RESULTS=str(out))
        # shim.py, and this checkout's hwsim before any installed one (an editable install may be another's)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), str(REPO), env.get("PYTHONPATH")]))
        cmd = [sys.executable, "-m", "pytest", "-q", "-c", str(ini), "--rootdir", str(data), "-p", "shim"]
        cmd += ["-p", "no:cacheprovider", "-p", "no:xdist", "-p", "no:randomly"]
        cmd += [f"--deselect={t}" for t in OUT_OF_SCOPE]
        cmd += sorted(p.name for p in data.glob("test_*.py"))
        proc = subprocess.run(cmd, cwd=data, env=env, capture_output=True, text=True, timeout=timeout)
        if not out.exists():
            raise RuntimeError(f"the wasmtime-py tests did not run:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return json.loads(out.read_text())


def read_expected(path: Path = EXPECTED) -> dict[str, tuple[str, str]]:
    """``{test id: ("pass" | "fail", reason)}`` from expected.txt (``#`` starts a comment line)."""
    expected = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        status, test, *reason = line.split(None, 2)
        expected[test] = (status, reason[0] if reason else "")
    return expected


def compare(results: dict[str, dict[str, str]], expected: dict[str, tuple[str, str]]) -> list[str]:
    """What is wrong with ``results`` against ``expected``, one line each (empty: as expected).

    An expected pass that fails, a known failure that passes (expected.txt is out of date), a test run
    but not listed or listed but not run.
    """
    problems = []
    for test, r in sorted(results.items()):
        status = expected.get(test, ("",))[0]
        if r["outcome"] != "passed" and status == "pass":
            problems.append(f"expected to pass, {r['outcome']}: {test}: {r['reason']}")
        elif r["outcome"] == "passed" and status == "fail":
            problems.append(f"known failure now passes (move it to `pass` in expected.txt): {test}")
    problems += [f"run but not in expected.txt: {t}" for t in sorted(set(results) - set(expected))]
    problems += [f"in expected.txt but not run: {t}" for t in sorted(set(expected) - set(results))]
    return problems


def write_expected(results: dict[str, dict[str, str]], path: Path = EXPECTED) -> None:
    """Rewrite expected.txt from ``results`` (``--update``): every test with its status and reason."""
    lines = [line for line in path.read_text().splitlines() if line.startswith("#")] if path.exists() else []
    for test, r in sorted(results.items()):
        if r["outcome"] == "passed":
            lines.append(f"pass  {test}")
        else:
            lines.append(f"fail  {test}  {r['reason']}")
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str]) -> int:
    update = "--update" in argv
    argv = [a for a in argv if a != "--update"]
    target = argv[0] if argv else "hwsim"
    data = locate()
    if data is None:
        print("wasmtime-py's tests not found: run python tests/wasmtime_py_compat/get_tests.py", file=sys.stderr)
        return 2
    results = run(data, target)
    passed = sorted(t for t, r in results.items() if r["outcome"] == "passed")
    for test, r in sorted(results.items()):
        if r["outcome"] != "passed":
            print(f"fail  {test}  {r['reason']}")
    print(f"{target}: {len(passed)} of {len(results)} wasmtime-py core-API tests pass")
    if update:
        write_expected(results)
    elif target == "hwsim":
        for problem in compare(results, read_expected()):
            print(problem)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
