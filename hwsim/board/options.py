"""Device options given outside the board file: ``--option DEV.KEY=VALUE`` text and the plugin's dicts.

::

    "blk0.readonly=yes" --split--> blk0, readonly, "yes"
                        --the board: blk0 is a virtio-blk, VirtioBlk.OPTIONS["readonly"] is a bool-->
                        {"blk0": {"readonly": True}} --Board.build(options=...)--> checked as in the file

A value is read as its option's declared type, never guessed from its look
(so ``serial=0123`` stays a string and ``queue_size=08`` is 8):

=========  ==============================================================
type       accepted text
=========  ==============================================================
bool       true/false, yes/no, on/off, 1/0 (any case)
int        decimal (leading zeros allowed) or 0x hex, optional sign and _
float      a decimal number
str        the text as it is, empty included
=========  ==============================================================

An unknown device or option name is a :class:`ConfigError` with the closest
name ("did you mean") and the known ones; ranges and choices are checked
afterwards by :meth:`Board.with_options`, as for the board file.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from ..devices.base import Option
from ..errors import ConfigError
from .board import Board, DeviceSpec

TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")
_EXPECTED = {
    bool: "a boolean (true/false, yes/no, on/off or 1/0)",
    int: "an integer (decimal or 0x hex)",
    float: "a number",
}


def option_value(spec: Option, text: str) -> Any:
    """``text`` as a value of ``spec.type``; raises ValueError naming the expected type."""
    kind = spec.type
    word = text.strip().lower()
    if kind is bool:
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    elif kind is int:
        digits = word.lstrip("+-")
        if digits.startswith("0x"):
            if len(digits) > 2:
                return _int(word, 16)
        elif digits[:1].isdigit():
            return _int(word, 10)
    elif kind is float:
        try:
            return float(word)
        except ValueError:
            pass
    else:
        return text
    raise ValueError(f"must be {_EXPECTED[kind]}, not {text!r}")


def _int(word: str, base: int) -> int:
    try:
        return int(word, base)
    except ValueError:
        raise ValueError(f"must be {_EXPECTED[int]}, not {word!r}") from None


def parse_options(board: Board, items: Iterable[str], *, flag: str = "--option") -> dict[str, dict[str, Any]]:
    """``DEV.KEY=VALUE`` texts as ``Board.build(options=...)`` overrides, typed by each option's declaration.

    A key given twice keeps its last value.  Every problem is a :class:`ConfigError` naming the item.
    """
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, text = item.partition("=")
        device, dot, name = key.partition(".")
        if not sep or not dot or not device or not name:
            raise ConfigError(f"{flag} takes DEV.KEY=VALUE, not {item!r}")
        spec = _option(board, device, name, f"{flag} {item}")
        try:
            value = option_value(spec, text)
        except ValueError as exc:
            raise ConfigError(f"{flag} {item}: {name} {exc}") from None
        out.setdefault(device, {})[name] = value
    return out


def check_overrides(board: Board, overrides: Mapping[str, Mapping[str, Any]], *, where: str = "options") -> None:
    """Raise a :class:`ConfigError` ("did you mean") for an unknown device or option name in ``overrides``.

    Values are left to :meth:`Board.with_options`, which checks them as in the board file.
    """
    for device, values in overrides.items():
        _device(board, device, where)
        if isinstance(values, Mapping):  # anything else: Board.with_options says what is wrong
            for name in values:
                _option(board, device, name, where)


def _device(board: Board, device: str, where: str) -> DeviceSpec:
    specs = {d.name: d for d in board.all_devices()}
    spec = specs.get(device)
    if spec is None:
        raise ConfigError(
            f"{where}: board {board.name!r} has no device {device!r}{_hint(str(device), specs)} "
            f"(devices: {', '.join(sorted(specs))})"
        )
    return spec


def _option(board: Board, device: str, name: str, where: str) -> Option:
    spec = _device(board, device, where)
    options = spec.cls.OPTIONS
    option = options.get(name)
    if option is None:
        known = ", ".join(sorted(options)) or "none"
        raise ConfigError(
            f"{where}: {device} ({spec.type}) has no option {name!r}{_hint(str(name), options)} (its options: {known})"
        )
    return option


def _hint(name: str, known) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""
