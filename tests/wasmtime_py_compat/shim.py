"""A pytest plugin for the run of wasmtime-py's tests: ``import wasmtime`` gets hwsim, and each test's
outcome (with the first line of its failure) is written as JSON to ``$HWSIM_COMPAT_RESULTS``.

``HWSIM_COMPAT_TARGET=wasmtime`` leaves the real wasmtime-py in place: the same harness, as a baseline.
"""

from __future__ import annotations

import json
import os
import sys

if os.environ.get("HWSIM_COMPAT_TARGET", "hwsim") == "hwsim":
    import hwsim

    sys.modules["wasmtime"] = hwsim  # the one-line import shim

_results: dict[str, dict[str, str]] = {}


def pytest_runtest_logreport(report) -> None:
    if report.when != "call" and report.passed:
        return
    entry = _results.setdefault(report.nodeid, {"outcome": "passed", "reason": ""})
    if report.failed or report.skipped:
        if entry["outcome"] == "passed":
            crash = getattr(report.longrepr, "reprcrash", None)
            message = crash.message if crash is not None else str(report.longrepr)
            entry["outcome"] = "skipped" if report.skipped else "failed"
            entry["reason"] = (message.strip().splitlines() or [""])[0][:200]


def pytest_sessionfinish(session) -> None:
    path = os.environ.get("HWSIM_COMPAT_RESULTS")
    if path:
        with open(path, "w") as f:
            json.dump(_results, f, indent=1, sort_keys=True)
