"""The tooling gates: ruff (lint and format) and mypy, as configured in pyproject.toml, pass on the tree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PATHS = ["hwsim", "tests", "bench"]

pytestmark = pytest.mark.skipif(not (ROOT / "pyproject.toml").is_file(), reason="not a source tree")


def run_tool(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m TOOL ARGS`` from the repository root (where pyproject.toml configures it)."""
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True)


def test_ruff_check():
    out = run_tool("ruff", "check", *PATHS)
    assert out.returncode == 0, f"ruff check {' '.join(PATHS)}:\n{out.stdout}{out.stderr}"


def test_ruff_format():
    out = run_tool("ruff", "format", "--check", *PATHS)
    assert out.returncode == 0, f"ruff format --check {' '.join(PATHS)} (run ruff format):\n{out.stdout}{out.stderr}"


def test_mypy():
    out = run_tool("mypy")
    assert out.returncode == 0, f"mypy (files and options in pyproject.toml):\n{out.stdout}{out.stderr}"
