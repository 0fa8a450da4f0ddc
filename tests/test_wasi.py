"""WASI preview 1 (hwsim/wasi/): each function's results and errnos, and the sandbox under attack.

Most tests call the Store's WASI context directly with a plain bytearray as guest memory (exact
errnos, no compile); the end-to-end tests run WAT modules through Linker.define_wasi.
"""

from __future__ import annotations

import os
import struct
import time
from pathlib import Path

import pytest

import hwsim
from hwsim.errors import ArgumentTypeError, WasmtimeError
from hwsim.wasi import DirPerms, ExitTrap, FilePerms, WasiConfig
from hwsim.wasi.abi import (
    DIRENT,
    EVENT,
    FDSTAT,
    FILESTAT,
    SUBSCRIPTION,
    SUBSCRIPTION_FD,
    Errno,
    Eventtype,
    Fdflags,
    Filetype,
    Oflags,
    Rights,
    Whence,
)
from hwsim.wasi.ctx import FUNCTIONS, WasiCtx
from hwsim.wasi.errors import WasiError

FOLLOW = 1
ALL = (1 << 30) - 1


class Mem:
    """Guest memory as a bytearray, with the GuestMemory protocol's bounds (FAULT)."""

    def __init__(self, size: int = 1 << 16) -> None:
        self.data = bytearray(size)
        self.top = 1024

    def read(self, addr: int, length: int) -> bytes:
        if addr + length > len(self.data):
            raise WasiError(Errno.FAULT)
        return bytes(self.data[addr : addr + length])

    def write(self, addr: int, data: bytes) -> None:
        if addr + len(data) > len(self.data):
            raise WasiError(Errno.FAULT)
        self.data[addr : addr + len(data)] = data


class Guest:
    """A WasiCtx with its memory: ``g.call("fd_close", 3)`` returns the errno."""

    def __init__(self, config: WasiConfig) -> None:
        self.ctx = WasiCtx(config)
        self.mem = Mem()

    def alloc(self, data: bytes | int) -> int:
        raw = bytes(data) if isinstance(data, (bytes, bytearray)) else bytes(data)
        ptr = self.mem.top
        self.mem.write(ptr, raw)
        self.mem.top += (len(raw) + 15) & ~7
        return ptr

    def s(self, text: str) -> tuple[int, int]:
        raw = text.encode()
        return self.alloc(raw), len(raw)

    def call(self, name: str, *args: int) -> Errno:
        masks = [0xFFFFFFFF if c == "i" else (1 << 64) - 1 for c in FUNCTIONS[name][0]]
        assert len(args) == len(masks), name
        return Errno(self.ctx.call(name, self.mem, tuple(a & m for a, m in zip(args, masks))))

    def u32(self, ptr: int) -> int:
        return struct.unpack_from("<I", self.mem.data, ptr)[0]

    def u64(self, ptr: int) -> int:
        return struct.unpack_from("<Q", self.mem.data, ptr)[0]

    def open(self, path: str, oflags: int = 0, rights: int = ALL, fdflags: int = 0, dirfd: int = 3, lookup=0):
        p, n = self.s(path)
        out = self.alloc(4)
        err = self.call("path_open", dirfd, lookup, p, n, oflags, rights, ALL, fdflags, out)
        return err, (self.u32(out) if err == Errno.SUCCESS else None)

    def write(self, fd: int, data: bytes) -> tuple[Errno, int]:
        buf = self.alloc(data)
        iov = self.alloc(struct.pack("<II", buf, len(data)))
        out = self.alloc(4)
        err = self.call("fd_write", fd, iov, 1, out)
        return err, self.u32(out)

    def read(self, fd: int, n: int) -> tuple[Errno, bytes]:
        buf = self.alloc(n)
        iov = self.alloc(struct.pack("<II", buf, n))
        out = self.alloc(4)
        err = self.call("fd_read", fd, iov, 1, out)
        return err, bytes(self.mem.data[buf : buf + self.u32(out)])

    def path_call(self, name: str, path: str, dirfd: int = 3) -> Errno:
        p, n = self.s(path)
        return self.call(name, dirfd, p, n)


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    box = tmp_path / "box"
    box.mkdir()
    (box / "hello.txt").write_text("hello, world\n")
    (box / "sub").mkdir()
    (box / "sub" / "inner.txt").write_text("inner")
    (tmp_path / "secret.txt").write_text("SECRET")
    return box


@pytest.fixture
def guest(sandbox: Path) -> Guest:
    config = WasiConfig()
    config.preopen_dir(sandbox, "/box")
    return Guest(config)


# --------------------------------------------------------------------------- args, env, clocks


def test_args_and_environ() -> None:
    config = WasiConfig()
    config.argv = ["prog", "a b", "ü"]
    config.env = [("A", "1"), ("B", "x=y")]
    g = Guest(config)
    sizes = g.alloc(8)
    assert g.call("args_sizes_get", sizes, sizes + 4) == Errno.SUCCESS
    assert (g.u32(sizes), g.u32(sizes + 4)) == (3, len(b"prog\0a b\0\xc3\xbc\0"))
    argv, buf = g.alloc(12), g.alloc(32)
    assert g.call("args_get", argv, buf) == Errno.SUCCESS
    assert bytes(g.mem.data[g.u32(argv + 4) : g.u32(argv + 4) + 4]) == b"a b\0"
    assert g.call("environ_sizes_get", sizes, sizes + 4) == Errno.SUCCESS
    assert (g.u32(sizes), g.u32(sizes + 4)) == (2, len(b"A=1\0B=x=y\0"))
    env, buf = g.alloc(8), g.alloc(16)
    assert g.call("environ_get", env, buf) == Errno.SUCCESS
    assert bytes(g.mem.data[buf : buf + 10]) == b"A=1\0B=x=y\0"
    assert g.call("args_get", len(g.mem.data) - 4, buf) == Errno.FAULT
    config.argv = ["prog", os.fsdecode(b"\xff\xfe")]  # not UTF-8 (as sys.argv holds it): the bytes as given
    g = Guest(config)
    assert g.call("args_get", argv, buf) == Errno.SUCCESS
    assert bytes(g.mem.data[buf : buf + 8]) == b"prog\0\xff\xfe\0"


def test_clocks_are_the_hosts() -> None:
    g = Guest(WasiConfig())
    out = g.alloc(8)
    before = time.time_ns()
    assert g.call("clock_time_get", 0, 1, out) == Errno.SUCCESS
    assert before <= g.u64(out) <= time.time_ns()
    for clock in (1, 2, 3):
        assert g.call("clock_time_get", clock, 0, out) == Errno.SUCCESS
        assert g.call("clock_res_get", clock, out) == Errno.SUCCESS and g.u64(out) >= 1
    assert g.call("clock_time_get", 4, 0, out) == Errno.INVAL
    assert g.call("clock_res_get", 99, out) == Errno.INVAL


def test_random_proc_sched() -> None:
    g = Guest(WasiConfig())
    buf = g.alloc(64)
    assert g.call("random_get", buf, 64) == Errno.SUCCESS
    assert any(g.mem.data[buf : buf + 64])
    assert g.call("random_get", buf, 0) == Errno.SUCCESS
    assert g.call("random_get", len(g.mem.data) - 8, 64) == Errno.FAULT
    assert g.call("sched_yield") == Errno.SUCCESS
    assert g.call("proc_raise", 6) == Errno.NOSYS
    with pytest.raises(ExitTrap) as info:
        g.call("proc_exit", 7)
    assert info.value.code == 7 and str(info.value) == "Exited with i32 exit status 7"


# --------------------------------------------------------------------------- stdio


def test_stdio_default_is_empty_and_discarded() -> None:
    g = Guest(WasiConfig())
    assert g.read(0, 10) == (Errno.SUCCESS, b"")
    assert g.write(1, b"lost") == (Errno.SUCCESS, 4)
    assert g.write(0, b"x")[0] == Errno.BADF
    assert g.read(1, 4)[0] == Errno.BADF
    assert g.write(9, b"x")[0] == Errno.BADF
    stat = g.alloc(24)
    assert g.call("fd_fdstat_get", 1, stat) == Errno.SUCCESS
    assert FDSTAT.unpack_from(g.mem.data, stat)[0] == Filetype.UNKNOWN  # not a terminal (Wasmtime's type)
    assert g.call("fd_seek", 1, 0, 0, stat) == Errno.SPIPE
    assert g.call("fd_prestat_get", 1, stat) == Errno.BADF


def test_stdio_files_and_custom(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_bytes(b"input data")
    config = WasiConfig()
    config.stdin_file = tmp_path / "in.txt"
    config.stdout_file = str(tmp_path / "out.txt")
    got: list[bytes] = []
    config.stderr_custom = got.append
    g = Guest(config)
    assert g.read(0, 5) == (Errno.SUCCESS, b"input")
    assert g.write(1, b"to file") == (Errno.SUCCESS, 7)
    assert g.write(2, b"to callback") == (Errno.SUCCESS, 11)
    g.ctx.close()
    assert (tmp_path / "out.txt").read_bytes() == b"to file"
    assert got == [b"to callback"]


def test_config_errors(tmp_path: Path) -> None:
    config = WasiConfig()
    with pytest.raises(ArgumentTypeError, match=r"WasiConfig.argv: expected a list of strings, not str"):
        config.argv = "prog"
    with pytest.raises(ArgumentTypeError, match=r"expected strings, not int"):
        config.argv = ["prog", 3]
    with pytest.raises(WasmtimeError, match=r"invalid variable name 'A=B'"):
        config.env = [("A=B", "1")]
    with pytest.raises(WasmtimeError, match=r"failed to add preopen dir: '.*nope' is not a directory"):
        config.preopen_dir(tmp_path / "nope", "/x")
    with pytest.raises(WasmtimeError, match=r"failed to set stdin file"):
        config.stdin_file = tmp_path / "nope"
    with pytest.raises(ArgumentTypeError, match=r"expected a WasiConfig, not dict"):
        WasiCtx({})  # type: ignore[arg-type]


# --------------------------------------------------------------------------- files and directories


def test_preopen_is_fd_3(guest: Guest) -> None:
    out = guest.alloc(8)
    assert guest.call("fd_prestat_get", 3, out) == Errno.SUCCESS
    assert (guest.mem.data[out], guest.u32(out + 4)) == (0, 4)
    name = guest.alloc(8)
    assert guest.call("fd_prestat_dir_name", 3, name, 4) == Errno.SUCCESS
    assert bytes(guest.mem.data[name : name + 4]) == b"/box"
    assert guest.call("fd_prestat_dir_name", 3, name, 3) == Errno.NAMETOOLONG
    assert guest.call("fd_prestat_get", 4, out) == Errno.BADF


def test_file_read_write_seek(guest: Guest, sandbox: Path) -> None:
    err, fd = guest.open("new.txt", Oflags.CREAT | Oflags.EXCL)
    assert err == Errno.SUCCESS and fd == 4
    assert guest.write(fd, b"0123456789") == (Errno.SUCCESS, 10)
    out = guest.alloc(8)
    assert guest.call("fd_tell", fd, out) == Errno.SUCCESS and guest.u64(out) == 10
    assert guest.call("fd_seek", fd, -4, Whence.END, out) == Errno.SUCCESS and guest.u64(out) == 6
    assert guest.read(fd, 10) == (Errno.SUCCESS, b"6789")
    assert guest.call("fd_seek", fd, -100, Whence.CUR, out) == Errno.INVAL
    assert guest.call("fd_seek", fd, 0, 7, out) == Errno.INVAL
    # pread/pwrite leave the position alone
    buf = guest.alloc(4)
    iov = guest.alloc(struct.pack("<II", buf, 4))
    assert guest.call("fd_pread", fd, iov, 1, 2, out) == Errno.SUCCESS and guest.u32(out) == 4
    assert bytes(guest.mem.data[buf : buf + 4]) == b"2345"
    guest.mem.write(buf, b"ABCD")
    assert guest.call("fd_pwrite", fd, iov, 1, 8, out) == Errno.SUCCESS and guest.u32(out) == 4
    assert (sandbox / "new.txt").read_bytes() == b"01234567ABCD"
    stat = guest.alloc(64)
    assert guest.call("fd_filestat_get", fd, stat) == Errno.SUCCESS
    fields = FILESTAT.unpack_from(guest.mem.data, stat)
    assert fields[2] == Filetype.REGULAR_FILE and fields[4] == 12
    assert fields[1] == os.stat(sandbox / "new.txt").st_ino
    assert guest.call("fd_filestat_set_size", fd, 3) == Errno.SUCCESS
    assert (sandbox / "new.txt").read_bytes() == b"012"
    assert guest.call("fd_allocate", fd, 0, 100) == Errno.SUCCESS
    assert (sandbox / "new.txt").stat().st_size == 100
    assert guest.call("fd_advise", fd, 0, 0, 1) == Errno.SUCCESS
    assert guest.call("fd_advise", fd, 0, 0, 9) == Errno.INVAL
    assert guest.call("fd_sync", fd) == Errno.SUCCESS
    assert guest.call("fd_datasync", fd) == Errno.SUCCESS
    assert guest.call("fd_filestat_set_times", fd, 10**9, 2 * 10**9, 1 | 4) == Errno.SUCCESS
    assert os.stat(sandbox / "new.txt").st_mtime_ns == 2 * 10**9
    assert guest.call("fd_filestat_set_times", fd, 0, 0, 1 | 2) == Errno.INVAL
    assert guest.call("fd_close", fd) == Errno.SUCCESS
    assert guest.call("fd_close", fd) == Errno.BADF
    assert guest.open("new.txt", Oflags.CREAT | Oflags.EXCL)[0] == Errno.EXIST
    assert guest.open("missing.txt")[0] == Errno.NOENT
    assert guest.open("hello.txt/x")[0] == Errno.NOTDIR
    assert guest.open("hello.txt", Oflags.DIRECTORY)[0] == Errno.NOTDIR
    assert guest.open("sub", rights=Rights.FD_WRITE)[0] == Errno.ISDIR
    assert guest.open("sub", rights=Rights.FD_READ)[0] == Errno.SUCCESS


def test_rights_limit_what_a_descriptor_does(guest: Guest) -> None:
    err, fd = guest.open("hello.txt", rights=Rights.FD_READ | Rights.FD_SEEK)
    assert err == Errno.SUCCESS
    assert guest.write(fd, b"x")[0] == Errno.BADF
    assert guest.read(fd, 5) == (Errno.SUCCESS, b"hello")
    stat = guest.alloc(24)
    assert guest.call("fd_fdstat_get", fd, stat) == Errno.SUCCESS
    ftype, flags, base, _ = FDSTAT.unpack_from(guest.mem.data, stat)
    assert ftype == Filetype.REGULAR_FILE and base == Rights.FD_READ | Rights.FD_SEEK
    assert guest.call("fd_filestat_set_size", fd, 0) == Errno.INVAL  # not open for writing (the host's)
    assert guest.call("fd_fdstat_set_rights", fd, Rights.FD_READ, 0) == Errno.SUCCESS
    out = guest.alloc(8)
    assert guest.call("fd_seek", fd, 1, Whence.SET, out) == Errno.NOTCAPABLE
    assert guest.call("fd_fdstat_set_rights", fd, ALL, 0) == Errno.NOTCAPABLE
    err, wfd = guest.open("hello.txt", rights=Rights.FD_WRITE)
    assert guest.read(wfd, 1)[0] == Errno.BADF
    # a file descriptor is no directory
    assert guest.open("x", dirfd=fd)[0] == Errno.NOTDIR
    buf = guest.alloc(64)
    assert guest.call("fd_readdir", fd, buf, 64, 0, out) == Errno.NOTDIR


def test_append_and_fdstat_set_flags(guest: Guest, sandbox: Path) -> None:
    err, fd = guest.open("hello.txt", fdflags=Fdflags.APPEND)
    assert guest.write(fd, b"more\n") == (Errno.SUCCESS, 5)
    assert (sandbox / "hello.txt").read_text() == "hello, world\nmore\n"
    assert guest.call("fd_fdstat_set_flags", fd, 0) == Errno.SUCCESS
    stat = guest.alloc(24)
    guest.call("fd_fdstat_get", fd, stat)
    assert FDSTAT.unpack_from(guest.mem.data, stat)[1] == 0
    assert guest.call("fd_fdstat_set_flags", fd, Fdflags.SYNC) == Errno.NOTSUP
    assert guest.call("fd_fdstat_set_flags", fd, 1 << 9) == Errno.INVAL
    assert guest.call("fd_fdstat_set_flags", 1, Fdflags.NONBLOCK) == Errno.SUCCESS


def test_readdir_lists_every_entry_with_cookies(guest: Guest) -> None:
    err, fd = guest.open("sub", Oflags.DIRECTORY, rights=Rights.FD_READDIR | Rights.PATH_OPEN)
    assert err == Errno.SUCCESS
    buf, used = guest.alloc(256), guest.alloc(4)
    assert guest.call("fd_readdir", fd, buf, 256, 0, used) == Errno.SUCCESS
    names, off, end = [], buf, buf + guest.u32(used)
    while off < end:
        d_next, _ino, namlen, kind = DIRENT.unpack_from(guest.mem.data, off)
        names.append((bytes(guest.mem.data[off + 24 : off + 24 + namlen]).decode(), kind, d_next))
        off += 24 + namlen
    assert names == [(".", 3, 1), ("..", 3, 2), ("inner.txt", 4, 3)]
    # resuming at a cookie; a buffer too small is filled to the brim (the reader asks again)
    assert guest.call("fd_readdir", fd, buf, 256, 2, used) == Errno.SUCCESS and guest.u32(used) == 24 + 9
    assert guest.call("fd_readdir", fd, buf, 30, 0, used) == Errno.SUCCESS and guest.u32(used) == 30
    assert guest.call("fd_readdir", fd, buf, 256, 3, used) == Errno.SUCCESS and guest.u32(used) == 0


def test_path_operations(guest: Guest, sandbox: Path) -> None:
    assert guest.path_call("path_create_directory", "d") == Errno.SUCCESS
    assert (sandbox / "d").is_dir()
    assert guest.path_call("path_create_directory", "d") == Errno.EXIST
    assert guest.path_call("path_remove_directory", "sub") == Errno.NOTEMPTY
    assert guest.path_call("path_unlink_file", "sub") == Errno.ISDIR
    assert guest.path_call("path_unlink_file", "hello.txt/") == Errno.NOTDIR
    assert guest.path_call("path_remove_directory", "hello.txt") == Errno.NOTDIR
    assert guest.path_call("path_remove_directory", "d") == Errno.SUCCESS
    assert guest.path_call("path_unlink_file", "nope") == Errno.NOENT
    a, an = guest.s("hello.txt")
    b, bn = guest.s("sub/renamed.txt")
    assert guest.call("path_rename", 3, a, an, 3, b, bn) == Errno.SUCCESS
    assert (sandbox / "sub" / "renamed.txt").read_text() == "hello, world\n"
    c, cn = guest.s("hard.txt")
    assert guest.call("path_link", 3, 0, b, bn, 3, c, cn) == Errno.SUCCESS
    assert (sandbox / "hard.txt").stat().st_nlink == 2
    t, tn = guest.s("sub/inner.txt")
    link, ln = guest.s("ln")
    assert guest.call("path_symlink", t, tn, 3, link, ln) == Errno.SUCCESS
    buf, used = guest.alloc(64), guest.alloc(4)
    assert guest.call("path_readlink", 3, link, ln, buf, 64, used) == Errno.SUCCESS
    assert bytes(guest.mem.data[buf : buf + guest.u32(used)]) == b"sub/inner.txt"
    assert guest.call("path_readlink", 3, link, ln, buf, 3, used) == Errno.SUCCESS and guest.u32(used) == 3
    assert guest.call("path_readlink", 3, c, cn, buf, 64, used) == Errno.INVAL
    stat = guest.alloc(64)
    assert guest.call("path_filestat_get", 3, 0, link, ln, stat) == Errno.SUCCESS
    assert FILESTAT.unpack_from(guest.mem.data, stat)[2] == Filetype.SYMBOLIC_LINK
    assert guest.call("path_filestat_get", 3, FOLLOW, link, ln, stat) == Errno.SUCCESS
    assert FILESTAT.unpack_from(guest.mem.data, stat)[2] == Filetype.REGULAR_FILE
    assert FILESTAT.unpack_from(guest.mem.data, stat)[4] == 5
    assert guest.call("path_filestat_set_times", 3, 0, c, cn, 0, 5 * 10**9, 4) == Errno.SUCCESS
    assert (sandbox / "hard.txt").stat().st_mtime_ns == 5 * 10**9
    # following a link when opening, or refusing to
    assert guest.open("ln", lookup=FOLLOW)[0] == Errno.SUCCESS
    assert guest.open("ln")[0] == Errno.LOOP


def test_renumber(guest: Guest) -> None:
    _, fd = guest.open("hello.txt")
    _, fd2 = guest.open("sub/inner.txt")
    assert guest.call("fd_renumber", fd, fd2) == Errno.SUCCESS
    assert guest.read(fd2, 5) == (Errno.SUCCESS, b"hello")
    assert guest.read(fd, 1)[0] == Errno.BADF
    assert guest.call("fd_renumber", fd2, 77) == Errno.BADF


def test_read_only_preopen(sandbox: Path) -> None:
    config = WasiConfig()
    config.preopen_dir(sandbox, ".", DirPerms.READ_ONLY, FilePerms.READ_ONLY)
    g = Guest(config)
    assert g.path_call("path_create_directory", "d") == Errno.PERM
    assert g.path_call("path_unlink_file", "hello.txt") == Errno.PERM
    assert g.open("new", Oflags.CREAT)[0] == Errno.PERM
    assert g.open("hello.txt", rights=Rights.FD_WRITE)[0] == Errno.PERM
    assert g.open("hello.txt", rights=Rights.FD_READ)[0] == Errno.SUCCESS
    assert sorted(os.listdir(sandbox)) == ["hello.txt", "sub"]


# --------------------------------------------------------------------------- the sandbox under attack


@pytest.mark.parametrize(
    "path",
    ["..", "../secret.txt", "sub/../../secret.txt", "sub/../sub/../../box/hello.txt", "/etc/passwd", "/"],
)
def test_escape_by_path_is_refused(guest: Guest, path: str) -> None:
    assert guest.open(path)[0] == Errno.PERM
    stat = guest.alloc(64)
    p, n = guest.s(path)
    assert guest.call("path_filestat_get", 3, FOLLOW, p, n, stat) == Errno.PERM


def test_inside_dotdot_is_fine(guest: Guest) -> None:
    err, fd = guest.open("sub/../hello.txt")
    assert err == Errno.SUCCESS and guest.read(fd, 5) == (Errno.SUCCESS, b"hello")


@pytest.mark.parametrize(
    "target, errno",
    [
        ("/etc", Errno.NOENT),  # absolute: no root to start from (Wasmtime's errno)
        ("/etc/passwd", Errno.NOENT),
        ("../secret.txt", Errno.PERM),  # relative, out through ..
        ("sub/../../secret.txt", Errno.PERM),
        ("loop", Errno.LOOP),  # itself
    ],
)
def test_escape_by_symlink_is_refused(guest: Guest, sandbox: Path, target: str, errno: Errno) -> None:
    os.symlink(target, sandbox / "loop" if target == "loop" else sandbox / "evil")
    name = "loop" if target == "loop" else "evil"
    assert guest.open(name, lookup=FOLLOW)[0] == errno
    assert guest.open(f"{name}/passwd", lookup=FOLLOW)[0] == errno  # as a directory on the way
    assert guest.open(f"{name}/x")[0] == errno  # intermediate components are always followed
    stat = guest.alloc(64)
    p, n = guest.s(name)
    assert guest.call("path_filestat_get", 3, FOLLOW, p, n, stat) == errno
    # the link itself may be looked at, never through
    assert guest.call("path_filestat_get", 3, 0, p, n, stat) == Errno.SUCCESS


def test_symlink_loop_of_two(guest: Guest, sandbox: Path) -> None:
    os.symlink("b", sandbox / "a")
    os.symlink("a", sandbox / "b")
    assert guest.open("a", lookup=FOLLOW)[0] == Errno.LOOP
    assert guest.open("a/x")[0] == Errno.LOOP


def test_guest_made_symlink_cannot_escape(guest: Guest, sandbox: Path) -> None:
    t, tn = guest.s("../secret.txt")
    p, pn = guest.s("out")
    assert guest.call("path_symlink", t, tn, 3, p, pn) == Errno.SUCCESS  # making it is allowed ...
    assert guest.open("out", lookup=FOLLOW)[0] == Errno.PERM  # ... following it out is not
    t, tn = guest.s("/etc/passwd")
    p, pn = guest.s("abs")
    assert guest.call("path_symlink", t, tn, 3, p, pn) == Errno.SUCCESS
    assert guest.open("abs", lookup=FOLLOW)[0] == Errno.NOENT
    buf, used = guest.alloc(64), guest.alloc(4)
    assert guest.call("path_readlink", 3, p, pn, buf, 64, used) == Errno.SUCCESS


def test_rename_and_link_out_of_the_sandbox_are_refused(guest: Guest, sandbox: Path) -> None:
    a, an = guest.s("hello.txt")
    out, on = guest.s("../stolen.txt")
    assert guest.call("path_rename", 3, a, an, 3, out, on) == Errno.PERM
    assert guest.call("path_link", 3, 0, a, an, 3, out, on) == Errno.PERM
    secret, sn = guest.s("../secret.txt")
    inside, inn = guest.s("got.txt")
    assert guest.call("path_rename", 3, secret, sn, 3, inside, inn) == Errno.PERM
    assert guest.call("path_link", 3, FOLLOW, secret, sn, 3, inside, inn) == Errno.PERM
    os.symlink("..", sandbox / "up")
    up, un = guest.s("up/stolen.txt")
    assert guest.call("path_rename", 3, a, an, 3, up, un) == Errno.PERM
    # link to a symlink that points out: the new name is a symlink too, still refused when followed
    os.symlink("/etc/passwd", sandbox / "pw")
    pw, pn = guest.s("pw")
    assert guest.call("path_link", 3, 0, pw, pn, 3, inside, inn) == Errno.SUCCESS
    assert guest.open("got.txt", lookup=FOLLOW)[0] == Errno.NOENT
    assert not (sandbox.parent / "stolen.txt").exists()
    assert (sandbox.parent / "secret.txt").read_text() == "SECRET"


def test_a_preopen_that_is_a_symlink(tmp_path: Path, sandbox: Path) -> None:
    (tmp_path / "alias").symlink_to(sandbox)
    config = WasiConfig()
    config.preopen_dir(tmp_path / "alias", "/data")
    g = Guest(config)
    err, fd = g.open("hello.txt")
    assert err == Errno.SUCCESS and g.read(fd, 5) == (Errno.SUCCESS, b"hello")
    assert g.open("../secret.txt")[0] == Errno.PERM
    assert g.open("../alias/hello.txt")[0] == Errno.PERM


def test_paths_that_are_not_paths(guest: Guest) -> None:
    assert guest.open("")[0] == Errno.NOENT
    assert guest.open("a\0b")[0] == Errno.INVAL
    p = guest.alloc(b"\xff\xfe")
    out = guest.alloc(4)
    assert guest.call("path_open", 3, 0, p, 2, 0, ALL, ALL, 0, out) == Errno.ILSEQ
    assert guest.call("path_open", 3, 0, len(guest.mem.data) - 2, 10, 0, ALL, ALL, 0, out) == Errno.FAULT
    assert guest.call("path_open", 9, 0, p, 2, 0, ALL, ALL, 0, out) == Errno.BADF
    h, hn = guest.s("hello.txt")
    assert guest.call("path_open", 3, 0, h, hn, 1 << 5, ALL, ALL, 0, out) == Errno.INVAL
    assert guest.call("path_open", 3, 0, h, hn, 0, ALL, ALL, 1 << 6, out) == Errno.INVAL


# --------------------------------------------------------------------------- poll and sockets


def test_poll_oneoff_clock_and_file(guest: Guest) -> None:
    sub = SUBSCRIPTION.pack(42, Eventtype.CLOCK, 1, 2_000_000, 0, 0)  # 2 ms, relative
    ins, outs, n = guest.alloc(sub), guest.alloc(32), guest.alloc(4)
    t = time.monotonic()
    assert guest.call("poll_oneoff", ins, outs, 1, n) == Errno.SUCCESS
    assert time.monotonic() - t >= 0.002 and guest.u32(n) == 1
    userdata, error, kind, *_ = EVENT.unpack_from(guest.mem.data, outs)
    assert (userdata, error, kind) == (42, 0, Eventtype.CLOCK)
    _, fd = guest.open("hello.txt")
    subs = SUBSCRIPTION_FD.pack(7, Eventtype.FD_READ, fd).ljust(48, b"\0") + SUBSCRIPTION.pack(
        8, Eventtype.CLOCK, 1, 10**10, 0, 0
    )
    ins, outs = guest.alloc(subs), guest.alloc(64)
    assert guest.call("poll_oneoff", ins, outs, 2, n) == Errno.SUCCESS and guest.u32(n) == 1
    userdata, error, kind, nbytes, _ = EVENT.unpack_from(guest.mem.data, outs)
    assert (userdata, error, kind, nbytes) == (7, 0, Eventtype.FD_READ, 13)
    bad = guest.alloc(SUBSCRIPTION_FD.pack(9, Eventtype.FD_WRITE, 99).ljust(48, b"\0"))
    assert guest.call("poll_oneoff", bad, outs, 1, n) == Errno.SUCCESS
    assert EVENT.unpack_from(guest.mem.data, outs)[:3] == (9, Errno.BADF, Eventtype.FD_WRITE)
    assert guest.call("poll_oneoff", ins, outs, 0, n) == Errno.INVAL


def test_sockets_are_not(guest: Guest) -> None:
    out = guest.alloc(8)
    assert guest.call("sock_shutdown", 1, 0) == Errno.NOTSOCK
    assert guest.call("sock_shutdown", 55, 0) == Errno.BADF
    assert guest.call("sock_accept", 3, 0, out) == Errno.NOTSOCK
    assert guest.call("sock_recv", 0, out, 0, 0, out, out) == Errno.NOTSOCK
    assert guest.call("sock_send", 1, out, 0, 0, out) == Errno.NOTSOCK


def test_every_preview1_function_is_defined() -> None:
    preview1 = """args_get args_sizes_get environ_get environ_sizes_get clock_res_get clock_time_get fd_advise
    fd_allocate fd_close fd_datasync fd_fdstat_get fd_fdstat_set_flags fd_fdstat_set_rights fd_filestat_get
    fd_filestat_set_size fd_filestat_set_times fd_pread fd_prestat_get fd_prestat_dir_name fd_pwrite fd_read
    fd_readdir fd_renumber fd_seek fd_sync fd_tell fd_write path_create_directory path_filestat_get
    path_filestat_set_times path_link path_open path_readlink path_remove_directory path_rename path_symlink
    path_unlink_file poll_oneoff proc_exit proc_raise sched_yield random_get sock_accept sock_recv sock_send
    sock_shutdown""".split()
    assert sorted(FUNCTIONS) == sorted(preview1)


# --------------------------------------------------------------------------- through the embedding API

HELLO = """
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hello\\n")
  (data (i32.const 0) "\\10\\00\\00\\00\\06\\00\\00\\00")
  (func (export "_start")
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $proc_exit (i32.const 3))))
"""


def test_define_wasi_runs_a_program() -> None:
    engine = hwsim.Engine()
    store = hwsim.Store(engine)
    config = WasiConfig()
    got: list[bytes] = []
    config.stdout_custom = got.append
    store.set_wasi(config)
    linker = hwsim.Linker(engine)
    linker.define_wasi()
    instance = linker.instantiate(store, hwsim.Module(engine, HELLO))
    with pytest.raises(hwsim.ExitTrap) as info:
        instance.exports(store)["_start"](store)
    assert info.value.code == 3 and isinstance(info.value, hwsim.WasmtimeError)
    assert got == [b"hello\n"]
    with pytest.raises(WasmtimeError, match=r"import of `wasi_snapshot_preview1::\w+` defined twice"):
        linker.define_wasi()
    store.close()


def test_wasi_without_a_config_traps() -> None:
    engine = hwsim.Engine()
    store = hwsim.Store(engine)
    linker = hwsim.Linker(engine)
    linker.define_wasi()
    instance = linker.instantiate(store, hwsim.Module(engine, HELLO))
    with pytest.raises(hwsim.Trap, match=r"the Store has no WASI config \(Store.set_wasi\)"):
        instance.exports(store)["_start"](store)
    with pytest.raises(ArgumentTypeError, match="expected a WasiConfig"):
        store.set_wasi("nope")


def test_wasi_needs_an_exported_memory() -> None:
    engine = hwsim.Engine()
    store = hwsim.Store(engine)
    store.set_wasi(WasiConfig())
    linker = hwsim.Linker(engine)
    linker.define_wasi()
    module = hwsim.Module(
        engine,
        '(module (import "wasi_snapshot_preview1" "sched_yield" (func $y (result i32)))'
        ' (func (export "_start") (drop (call $y))))',
    )
    with pytest.raises(hwsim.Trap, match=r"exports no memory named `memory`"):
        linker.instantiate(store, module).exports(store)["_start"](store)


def test_guest_buffer_outside_memory_is_fault() -> None:
    engine = hwsim.Engine()
    store = hwsim.Store(engine)
    store.set_wasi(WasiConfig())
    linker = hwsim.Linker(engine)
    linker.define_wasi()
    module = hwsim.Module(
        engine,
        '(module (import "wasi_snapshot_preview1" "random_get" (func $r (param i32 i32) (result i32)))'
        ' (memory (export "memory") 1) (func (export "f") (param i32 i32) (result i32)'
        " (call $r (local.get 0) (local.get 1))))",
    )
    f = linker.instantiate(store, module).exports(store)["f"]
    assert f(store, 0, 16) == 0
    assert f(store, 65530, 16) == Errno.FAULT
    assert f(store, -1, 1) == Errno.FAULT


def test_store_close_and_drop_close_the_host_files(sandbox: Path) -> None:
    import gc

    def open_fds() -> int:
        """Descriptors of this process open on the sandbox (not all of them: other tests' background threads,
        a Dask client's say, may close sockets of their own meanwhile)."""
        count = 0
        for fd in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue  # (closed since listed, or the listing's own descriptor)
            count += target == str(sandbox) or target.startswith(f"{sandbox}/")
        return count

    config = WasiConfig()
    config.preopen_dir(sandbox, "/box")
    gc.collect()  # earlier tests' garbage in cycles (stores holding files) would close its files below
    before = open_fds()
    store = hwsim.Store(hwsim.Engine())
    store.set_wasi(config)
    assert open_fds() == before + 1
    store.set_wasi(config)  # the second replaces the first
    assert open_fds() == before + 1
    store.close()
    assert open_fds() == before
    store = hwsim.Store(hwsim.Engine())
    store.set_wasi(config)
    del store
    gc.collect()
    assert open_fds() == before
    store = hwsim.Store(hwsim.Engine())
    store.close()
    with pytest.raises(hwsim.ClosedError):
        store.set_wasi(config)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any directory: search-only permission cannot be tested")
def test_a_search_only_directory_on_the_way(guest: Guest, sandbox: Path) -> None:
    (sandbox / "sub").chmod(0o311)
    try:
        err, fd = guest.open("sub/inner.txt")
        assert err == Errno.SUCCESS and guest.read(fd, 5) == (Errno.SUCCESS, b"inner")
    finally:
        (sandbox / "sub").chmod(0o755)
