"""docs/tutorial.md runs as written: every ``console`` block's commands, their output and exit status.

In a ``console`` block a line ``$ command`` is run with bash in the repository's root (with this
Python's scripts first on PATH); the lines after it, up to the next ``$``, are its expected output
(stdout and stderr together).  ``...`` inside a line matches any text; a line that is only ``...``
matches any number of lines.  A last line ``[exit N]`` is the expected exit status (default 0).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "docs" / "tutorial.md"


def _steps(text: str) -> list[tuple[str, list[str], int]]:
    steps = []
    for block in re.findall(r"```console\n(.*?)```", text, flags=re.S):
        command, expected = None, []
        for line in block.splitlines():
            if line.startswith("$ "):
                if command is not None:
                    steps.append(_step(command, expected))
                command, expected = line[2:], []
            elif command is not None:
                expected.append(line)
        if command is not None:
            steps.append(_step(command, expected))
    return steps


def _step(command: str, expected: list[str]) -> tuple[str, list[str], int]:
    status = 0
    if expected and re.fullmatch(r"\[exit \d+\]", expected[-1]):
        status = int(expected[-1][6:-1])
        expected = expected[:-1]
    return command, expected, status


def _matches(expected: list[str], actual: list[str]) -> bool:
    """Expected lines against actual ones; ``...`` alone skips any lines, inside a line any text."""

    def line_ok(pattern: str, line: str) -> bool:
        regex = ".*".join(re.escape(part) for part in pattern.split("..."))
        return re.fullmatch(regex, line.rstrip()) is not None

    def match(i: int, j: int) -> bool:
        if i == len(expected):
            return j == len(actual)
        if expected[i] == "...":
            return any(match(i + 1, k) for k in range(j, len(actual) + 1))
        return j < len(actual) and line_ok(expected[i], actual[j]) and match(i + 1, j + 1)

    return match(0, 0)


# Debian packages a step may need; without one the step would wait for a client that never comes.
_TOOLS = ("gdb-multiarch",)

STEPS = _steps(TUTORIAL.read_text()) if TUTORIAL.is_file() else []


def test_the_tutorial_has_steps():
    assert len(STEPS) >= 10


@pytest.mark.parametrize("command, expected, status", STEPS, ids=[s[0][:60] for s in STEPS])
def test_tutorial_step(command, expected, status):
    for tool in _TOOLS:
        if tool in command and shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (the README's test block installs it)")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}", COLUMNS="100")
    out = subprocess.run(
        ["bash", "-c", command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    actual = (out.stdout + out.stderr).rstrip("\n").splitlines()
    assert out.returncode == status, f"exit {out.returncode}\n{out.stdout}\n{out.stderr}"
    assert _matches(expected, actual), "expected:\n" + "\n".join(expected) + "\n\ngot:\n" + "\n".join(actual)


def test_the_matcher_can_fail():
    assert _matches(["a ... c", "...", "z"], ["a b c", "x", "y", "z"])
    assert not _matches(["a ... c"], ["a b d"])
    assert not _matches(["a"], ["a", "b"])
