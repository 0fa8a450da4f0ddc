"""``WasiConfig``: what a WASI program sees (arguments, environment, stdio, preopened directories),
in wasmtime-py's shape (``wasmtime/_wasi.py``)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from enum import Enum
from pathlib import Path

from ..errors import ArgumentTypeError, WasmtimeError
from ..runtime.layout import THREAD_STACKS
from ..runtime.threads import MAX_THREADS, TIME_SLICE

__all__ = ["DirPerms", "FilePerms", "WasiConfig"]


class DirPerms(Enum):
    """What a guest may do to a preopened directory's tree: read (list, stat, open) and write
    (create, remove, rename, link)."""

    READ_ONLY = 1
    WRITE_ONLY = 2
    READ_WRITE = 3


class FilePerms(Enum):
    """The most a guest may open a file under a preopened directory for."""

    READ_ONLY = 1
    WRITE_ONLY = 2
    READ_WRITE = 3


class Preopen:
    __slots__ = ("host", "guest", "dir_perms", "file_perms")

    def __init__(self, host: str, guest: str, dir_perms: DirPerms, file_perms: FilePerms) -> None:
        self.host = host
        self.guest = guest
        self.dir_perms = dir_perms
        self.file_perms = file_perms


class Stdio:
    """Where one standard stream goes: ``("inherit",)``, ``("file", path)``, ``("custom", fn)`` or
    ``("none",)`` (reads see end of file, writes are discarded: wasmtime's default)."""

    __slots__ = ("kind", "target")

    def __init__(self, kind: str, target: object = None) -> None:
        self.kind = kind
        self.target = target


def _path(value, what: str) -> str:
    if isinstance(value, bytes):
        return os.fsdecode(value)
    if isinstance(value, (str, os.PathLike)):
        return os.fspath(value)
    raise ArgumentTypeError(f"{what}: expected a path (str, bytes or os.PathLike), not {type(value).__name__}")


def _count(value, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(f"{what}: expected an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise WasmtimeError(f"{what}: expected {low} to {high}, not {value}")
    return value


def _strings(values, what: str) -> list[str]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ArgumentTypeError(f"{what}: expected a list of strings, not {type(values).__name__}")
    out = list(values)
    for v in out:
        if not isinstance(v, str):
            raise ArgumentTypeError(f"{what}: expected strings, not {type(v).__name__} ({v!r})")
    return out


class WasiConfig:
    """A WASI program's world.  Give it to :meth:`hwsim.Store.set_wasi`; :meth:`hwsim.Linker.define_wasi`
    then satisfies the module's ``wasi_snapshot_preview1`` imports from it.

    Defaults as wasmtime's: no arguments, no environment, stdin empty, stdout and stderr discarded,
    no directories.  Files named by ``stdin_file``/``stdout_file``/``stderr_file`` are checked
    (opened) when the Store takes the config."""

    def __init__(self) -> None:
        self._argv: list[str] = []
        self._env: list[tuple[str, str]] = []
        self.stdin = Stdio("none")
        self.stdout = Stdio("none")
        self.stderr = Stdio("none")
        self.preopens: list[Preopen] = []
        self._threads = False
        self._thread_seed = 0
        self._max_threads = MAX_THREADS
        self._time_slice = TIME_SLICE
        self._instruction_slice = 0
        self._hart_turn = 0
        self._virtual_time = False
        self._clock_epoch = 0
        self._random_seed: int | None = None

    # wasi-threads (docs/wasi.md, *Threads*): ``wasi::thread-spawn`` spawns threads on the Store's harts.
    @property
    def threads(self) -> bool:
        """wasi-threads on: ``thread-spawn`` starts a new instance of the calling module as a thread
        (off: it returns -1); threads interleave (on the Store's harts) under a scheduler seeded with
        :attr:`thread_seed`, and the WASI clocks and sleeps are the scheduler's virtual time."""
        return self._threads

    @threads.setter
    def threads(self, enable: bool) -> None:
        if not isinstance(enable, bool):
            raise ArgumentTypeError(f"WasiConfig.threads: expected a bool, not {type(enable).__name__}")
        self._threads = enable

    @property
    def thread_seed(self) -> int:
        """The scheduler's seed: the same seed, the same interleaving of the threads."""
        return self._thread_seed

    @thread_seed.setter
    def thread_seed(self, seed: int) -> None:
        self._thread_seed = _count(seed, "WasiConfig.thread_seed", 0, (1 << 64) - 1)

    @property
    def max_threads(self) -> int:
        """How many spawned threads may live at once; ``thread-spawn`` returns -1 past it."""
        return self._max_threads

    @max_threads.setter
    def max_threads(self, n: int) -> None:
        self._max_threads = _count(n, "WasiConfig.max_threads", 1, THREAD_STACKS - 1)

    @property
    def time_slice(self) -> int:
        """The mean time slice, in fuel units (each slice is 1 to twice this, drawn from the seed)."""
        return self._time_slice

    @time_slice.setter
    def time_slice(self, units: int) -> None:
        self._time_slice = _count(units, "WasiConfig.time_slice", 1, 1 << 40)

    @property
    def instruction_slice(self) -> int:
        """0 (the default): threads are preempted at checkpoints (function entries, loop headers).
        N > 0: also after 1 to 2N instructions anywhere, drawn from the seed, so a race between two
        instructions of straight-line code shows up; the CPU then counts every instruction (slow)."""
        return self._instruction_slice

    @instruction_slice.setter
    def instruction_slice(self, n: int) -> None:
        self._instruction_slice = _count(n, "WasiConfig.instruction_slice", 0, 1 << 40)

    @property
    def hart_turn(self) -> int:
        """On a Store of several harts (``Store(harts=N)``, a board's ``harts = N``): each hart's turn
        is 1 to 2N instructions, drawn from the seed, in place of :attr:`instruction_slice` (so the
        threads on different harts interleave between any two instructions).  0 (the default): the
        harts take turns at the thread switches of one hart.  On one hart it does nothing."""
        return self._hart_turn

    @hart_turn.setter
    def hart_turn(self, n: int) -> None:
        self._hart_turn = _count(n, "WasiConfig.hart_turn", 0, 1 << 40)

    # Reproducible runs (hwsim's own; docs/wasi.md, *Reproducible runs*).
    @property
    def virtual_time(self) -> bool:
        """Every WASI clock reads the Store's virtual time (10 ns per unit of fuel executed, on a
        metered Engine), and sleeps and timeouts advance it instead of waiting, so a program reads the
        same times in every run.  The realtime clock starts at :attr:`clock_epoch`.  (Threaded programs
        always run in virtual time; their realtime clock starts at the host's time unless this is set.)"""
        return self._virtual_time

    @virtual_time.setter
    def virtual_time(self, enable: bool) -> None:
        if not isinstance(enable, bool):
            raise ArgumentTypeError(f"WasiConfig.virtual_time: expected a bool, not {type(enable).__name__}")
        self._virtual_time = enable

    @property
    def clock_epoch(self) -> int:
        """With :attr:`virtual_time`: the realtime clock's start, in ns since 1970-01-01 (default 0)."""
        return self._clock_epoch

    @clock_epoch.setter
    def clock_epoch(self, ns: int) -> None:
        self._clock_epoch = _count(ns, "WasiConfig.clock_epoch", 0, (1 << 64) - 1)

    @property
    def random_seed(self) -> int | None:
        """None (the default): ``random_get`` gives the host's random bytes.  An int: bytes from a
        generator seeded with it, the same in every run (not for secrets)."""
        return self._random_seed

    @random_seed.setter
    def random_seed(self, seed: int | None) -> None:
        self._random_seed = None if seed is None else _count(seed, "WasiConfig.random_seed", 0, (1 << 64) - 1)

    # argv and env: setter properties, as wasmtime-py's (``config.argv = [...]``).
    @property
    def argv(self) -> list[str]:
        return list(self._argv)

    @argv.setter
    def argv(self, argv: Iterable[str]) -> None:
        self._argv = _strings(argv, "WasiConfig.argv")

    def inherit_argv(self) -> None:
        import sys

        self._argv = list(sys.argv)

    @property
    def env(self) -> list[tuple[str, str]]:
        return list(self._env)

    @env.setter
    def env(self, pairs: Iterable[Iterable[str]]) -> None:
        out = []
        for pair in pairs:
            kv = _strings(pair, "WasiConfig.env")
            if len(kv) != 2:
                raise ArgumentTypeError(f"WasiConfig.env: expected (name, value) pairs, not {pair!r}")
            if "=" in kv[0] or not kv[0]:
                raise WasmtimeError(f"WasiConfig.env: invalid variable name {kv[0]!r}")
            out.append((kv[0], kv[1]))
        self._env = out

    def inherit_env(self) -> None:
        self._env = list(os.environ.items())

    def inherit_stdin(self) -> None:
        self.stdin = Stdio("inherit")

    def inherit_stdout(self) -> None:
        self.stdout = Stdio("inherit")

    def inherit_stderr(self) -> None:
        self.stderr = Stdio("inherit")

    def _set_file(self, which: str, path) -> None:
        path = _path(path, f"WasiConfig.{which}_file")
        if which == "stdin" and not os.path.isfile(path):
            raise WasmtimeError(f"failed to set stdin file: {path!r} is not a readable file")
        setattr(self, which, Stdio("file", path))

    def _set_custom(self, which: str, callback: Callable[[bytes], object]) -> None:
        if not callable(callback):
            raise ArgumentTypeError(f"WasiConfig.{which}_custom: expected a callable, not {type(callback).__name__}")
        setattr(self, which, Stdio("custom", callback))

    stdin_file = property(None, lambda self, path: self._set_file("stdin", path))
    stdout_file = property(None, lambda self, path: self._set_file("stdout", path))
    stderr_file = property(None, lambda self, path: self._set_file("stderr", path))
    stdout_custom = property(None, lambda self, fn: self._set_custom("stdout", fn))
    stderr_custom = property(None, lambda self, fn: self._set_custom("stderr", fn))

    def preopen_dir(
        self,
        path,
        guest_path: str,
        dir_perms: DirPerms = DirPerms.READ_WRITE,
        file_perms: FilePerms = FilePerms.READ_WRITE,
    ) -> None:
        """Let the guest reach the host directory ``path`` (and nothing outside it) as ``guest_path``."""
        host = _path(path, "WasiConfig.preopen_dir(path)")
        if not isinstance(guest_path, str):
            raise ArgumentTypeError(
                f"WasiConfig.preopen_dir(guest_path): expected a str, not {type(guest_path).__name__}"
            )
        if not isinstance(dir_perms, DirPerms) or not isinstance(file_perms, FilePerms):
            raise ArgumentTypeError("WasiConfig.preopen_dir: dir_perms and file_perms must be DirPerms and FilePerms")
        if not Path(host).is_dir():
            raise WasmtimeError(f"failed to add preopen dir: {host!r} is not a directory")
        self.preopens.append(Preopen(host, guest_path, dir_perms, file_perms))
