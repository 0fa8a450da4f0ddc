"""Guest paths resolved inside a preopened directory, one component at a time, as ``openat`` does.

The sandbox rule: a guest reaches no host path outside its preopens.  A guest path is never handed
to the host as a whole; it is walked from the directory descriptor it names::

    "a/b/../c/link"            components  a, b, .., c, link
     preopen fd --openat(a, O_NOFOLLOW|O_DIRECTORY)--> fd_a --openat(b)--> fd_b
     ..  pops back to fd_a   (a ".." at the preopen itself: PERM, the escape refused)
     link: a symlink -> its target's components are walked in its place (an absolute target: NOENT,
           as Wasmtime says; more than 40 expansions: LOOP)
     the last component is returned with the directory holding it: (fd_c, "link") for the caller's
     *at() call (os.open/os.stat/os.mkdir/... with dir_fd=, never following a symlink)

Each intermediate directory is opened with ``O_NOFOLLOW``, so a component swapped for a symlink
after it was looked at fails (ELOOP) rather than being followed.  Absolute guest paths are
refused (wasi-libc turns them into preopen-relative ones before they get here).
"""

from __future__ import annotations

import os
import stat

from .abi import Errno
from .errors import WasiError

MAX_SYMLINK_EXPANSIONS = 40
# O_PATH (Linux): a directory on the way needs search permission only, as in a host path walk.
_DIR_FLAGS = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Resolved:
    """Where a guest path ends: the host directory descriptor ``dir_fd`` that holds its last
    component ``name`` (``"."`` when the path names a directory itself).  ``must_be_dir``: the path
    ended in ``/``.  Close it (or use ``with``) to release the directories opened on the way."""

    __slots__ = ("dir_fd", "name", "must_be_dir", "_owned")

    def __init__(self, dir_fd: int, name: str, must_be_dir: bool, owned: list[int]) -> None:
        self.dir_fd = dir_fd
        self.name = name
        self.must_be_dir = must_be_dir
        self._owned = owned

    def close(self) -> None:
        for fd in self._owned:
            os.close(fd)
        self._owned = []

    def __enter__(self) -> Resolved:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _split(path: str) -> list[str]:
    return [c for c in path.split("/") if c not in ("", ".")]


def resolve(base_fd: int, path: str, *, follow: bool) -> Resolved:
    """Resolve guest ``path`` below the directory ``base_fd``; ``follow``: a symlink as the last
    component is followed too (WASI's ``lookupflags.symlink_follow``).  Raises :class:`WasiError`."""
    if "\0" in path:
        raise WasiError(Errno.INVAL)
    if path == "":
        raise WasiError(Errno.NOENT)
    if path.startswith("/"):
        raise WasiError(Errno.PERM)
    must_be_dir = path.endswith("/") or path.endswith("/.") or path in (".", "..") or path.endswith("/..")
    pending = _split(path)[::-1]  # a stack: the next component last
    stack: list[int] = []  # directories opened below base_fd, innermost last
    expansions = 0
    try:
        while pending:
            comp = pending.pop()
            here = stack[-1] if stack else base_fd
            if comp == "..":
                if not stack:
                    raise WasiError(Errno.PERM)
                os.close(stack.pop())
                continue
            last = not pending
            if last and not follow and not must_be_dir:
                return Resolved(here, comp, must_be_dir, stack)
            try:
                st = os.stat(comp, dir_fd=here, follow_symlinks=False)
            except FileNotFoundError:
                if last:  # may be created by the caller
                    return Resolved(here, comp, must_be_dir, stack)
                raise
            if stat.S_ISLNK(st.st_mode):
                expansions += 1
                if expansions > MAX_SYMLINK_EXPANSIONS:
                    raise WasiError(Errno.LOOP)
                target = os.readlink(comp, dir_fd=here)
                if target.startswith("/"):  # no root to start from in a sandbox: NOENT, as in Wasmtime
                    raise WasiError(Errno.NOENT)
                if target.endswith("/") and last:
                    must_be_dir = True
                pending.extend(_split(target)[::-1] if target else [])
                if not target:
                    raise WasiError(Errno.NOENT)
                continue
            if last:
                if must_be_dir and not stat.S_ISDIR(st.st_mode):
                    raise WasiError(Errno.NOTDIR)
                return Resolved(here, comp, must_be_dir, stack)
            if not stat.S_ISDIR(st.st_mode):
                raise WasiError(Errno.NOTDIR)
            stack.append(os.open(comp, _DIR_FLAGS, dir_fd=here))
        # the path named a directory reached by "." or ".." (or only them)
        return Resolved(stack[-1] if stack else base_fd, ".", True, stack)
    except BaseException:
        for fd in stack:
            os.close(fd)
        raise
