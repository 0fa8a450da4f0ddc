"""The wasi-testsuite runtime adapter for hwsim (the interface of wasi-testsuite/doc/adapters.md).

With the suite's own runner (Python >= 3.12)::

    python3.12 wasi-testsuite/test-runner/wasi_test_runner.py \\
        -t wasi-testsuite/tests/c/testsuite/wasm32-wasip1 -r tests/wasi_adapter.py

``HWSIM`` overrides the command (default: this Python running ``-m hwsim``).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

HWSIM = shlex.split(os.getenv("HWSIM", f"{shlex.quote(sys.executable)} -m hwsim"))


def get_name() -> str:
    return "hwsim"


def get_version() -> str:
    out = subprocess.run([*HWSIM, "--version"], capture_output=True, text=True, check=True)
    return out.stdout.split()[1]


def get_wasi_versions() -> list[str]:
    return ["wasm32-wasip1"]


def get_wasi_worlds() -> list[str]:
    return ["wasi:cli/command"]


def compute_argv(
    test_path: str,
    args_env_dirs: tuple[list[str], dict[str, str], list[tuple[Path, str]]],
    proposals: list[str],
    wasi_world: str,
    wasi_version: str,
) -> list[str]:
    args, env, dirs = args_env_dirs
    argv = [*HWSIM, "wasm", "run"]
    for k, v in env.items():
        argv += ["--env", f"{k}={v}"]
    for host, guest in dirs:
        argv += ["--dir", f"{host}::{guest}"]
    return [*argv, test_path, *args]
