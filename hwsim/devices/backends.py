"""Character backends: where a serial port's bytes come from and go to.

=========  ===============================================================
console    stdin/stdout of the hwsim process (input read without blocking)
file       output appended to a file; input read from another file
memory     an in-memory input queue and captured output (for tests)
=========  ===============================================================

A backend is pulled: the UART asks ``read(n)`` for at most ``n`` bytes that
are available now (never blocking) and hands each transmitted byte to
``write``.
"""

from __future__ import annotations

import os
import select
import sys
from pathlib import Path

from ..errors import ConfigError


class CharBackend:
    kind = ""

    def read(self, n: int) -> bytes:
        return b""

    def input_ended(self) -> bool:
        """True once no more input will ever arrive (end of file, or all queued input consumed)."""
        return True

    def wait_input(self, timeout: float) -> None:
        """Block up to ``timeout`` seconds for input (backends fed in memory never block)."""

    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass


class MemoryBackend(CharBackend):
    """Input queued with ``feed``; output captured in ``output``."""

    kind = "memory"

    def __init__(self, input: bytes = b"") -> None:
        self._input = bytearray(input)
        self.output = bytearray()

    def feed(self, data: bytes) -> None:
        self._input += data

    @property
    def pending_input(self) -> int:
        return len(self._input)

    def read(self, n: int) -> bytes:
        chunk = bytes(self._input[:n])
        del self._input[:n]
        return chunk

    def input_ended(self) -> bool:
        return not self._input

    def write(self, data: bytes) -> None:
        self.output += data

    def output_text(self) -> str:
        return self.output.decode("utf-8", errors="replace")


class ConsoleBackend(CharBackend):
    """The process's stdin/stdout."""

    kind = "console"

    def __init__(self, stdin=None, stdout=None) -> None:
        self._in = stdin if stdin is not None else sys.stdin
        self._out = stdout if stdout is not None else sys.stdout
        self._eof = False

    def _fd(self) -> int | None:
        try:
            return self._in.fileno()
        except (AttributeError, OSError, ValueError):
            return None

    def read(self, n: int) -> bytes:
        fd = self._fd()
        if fd is None or self._eof:
            return b""
        try:
            ready, _, _ = select.select([fd], [], [], 0)
        except (OSError, ValueError):
            return b""
        if not ready:
            return b""
        try:
            data = os.read(fd, n)
        except OSError:
            data = b""
        if not data:
            self._eof = True  # select said readable and nothing came: end of input
        return data

    def input_ended(self) -> bool:
        return self._eof or self._fd() is None

    def wait_input(self, timeout: float) -> None:
        fd = self._fd()
        if fd is None or self._eof:
            return
        try:
            select.select([fd], [], [], timeout)
        except (OSError, ValueError):
            pass

    def write(self, data: bytes) -> None:
        out = getattr(self._out, "buffer", None)
        if out is not None:
            out.write(data)
        else:
            self._out.write(data.decode("latin-1"))
        self._out.flush()


class FileBackend(CharBackend):
    """Output appended to ``output``; input read, as the guest consumes it, from ``input``."""

    kind = "file"

    def __init__(self, output: str | Path, input: str | Path | None = None) -> None:
        try:
            self._out = open(output, "ab")
            self._in = open(input, "rb") if input else None
        except OSError as exc:
            raise ConfigError(f"serial file backend: {exc.strerror}: {exc.filename!r}") from None

    def read(self, n: int) -> bytes:
        if self._in is None:
            return b""
        data = self._in.read(n)
        if n and not data:
            self._ended = True
        return data

    def input_ended(self) -> bool:
        return self._in is None or getattr(self, "_ended", False)

    def write(self, data: bytes) -> None:
        self._out.write(data)
        self._out.flush()

    def close(self) -> None:
        self._out.close()
        if self._in is not None:
            self._in.close()


def make_backend(kind: str, *, output: str = "", input: str = "") -> CharBackend:
    if kind == "console":
        return ConsoleBackend()
    if kind == "memory":
        return MemoryBackend()
    if kind == "file":
        if not output:
            raise ConfigError("serial file backend needs an output file name")
        return FileBackend(output, input or None)
    raise ConfigError(f"unknown serial backend {kind!r} (known: console, file, memory)")
