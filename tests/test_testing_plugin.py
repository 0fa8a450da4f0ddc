"""hwsim.testing: the pytest plugin's fixtures as a project outside hwsim's repository sees them."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwsim.errors import ConfigError
from hwsim.testing import find_driver

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[1]


def test_a_missing_driver_names_the_path_and_where_it_was_looked_for(pytester):
    """Found by a newcomer: the documented ``hwsim_driver("drivers/uart16550")`` run outside hwsim's repository
    ended in a raw FileNotFoundError from read_bytes()."""
    pytester.makepyfile(
        test_mine="""
        def test_echo(hwsim_driver):
            hwsim_driver("drivers/uart16550", uart_input=b"hi\\n")
    """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "FileNotFoundError" not in out
    assert (
        f"ConfigError: hwsim_driver: no such driver 'drivers/uart16550' (a .wasm module or a C driver "
        f"directory); looked for {pytester.path / 'drivers' / 'uart16550'}."
    ) in out.replace("\n", "")


def test_drivers_are_found_from_the_rootdir(tmp_path, monkeypatch):
    (tmp_path / "drivers" / "mine").mkdir(parents=True)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert find_driver("drivers/mine", tmp_path) == tmp_path / "drivers" / "mine"
    assert find_driver(REPO / "drivers" / "uart16550", tmp_path) == REPO / "drivers" / "uart16550"
    with pytest.raises(ConfigError) as info:
        find_driver("drivers/theirs", tmp_path)
    assert str(info.value) == (
        f"hwsim_driver: no such driver 'drivers/theirs' (a .wasm module or a C driver "
        f"directory); looked for {tmp_path / 'sub' / 'drivers' / 'theirs'}, "
        f"{tmp_path / 'drivers' / 'theirs'}.  hwsim's own drivers are in its source tree "
        f"(drivers/), not in an installed hwsim"
    )


def test_the_documented_example_runs_from_a_project_with_its_own_copy(pytester):
    for name in ("uart16550", "include"):
        pytester.path.joinpath("drivers", name).mkdir(parents=True)
        for f in (REPO / "drivers" / name).glob("*.[ch]"):
            pytester.path.joinpath("drivers", name, f.name).write_bytes(f.read_bytes())
    pytester.mkdir("tests")
    pytester.path.joinpath("tests", "test_echo.py").write_text(
        "def test_echo(hwsim_driver):\n"
        "    run = hwsim_driver('drivers/uart16550', uart_input=b'hi\\n')\n"
        "    assert run.report.ok and run.console == b'hi\\n'\n"
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--rootdir", str(pytester.path), str(pytester.path / "tests")
    )
    result.assert_outcomes(passed=1)
