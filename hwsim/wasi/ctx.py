"""A Store's WASI state (the descriptor table, stdio, arguments) and every preview 1 function.

Each function is a method named as the import, registered with its wasm signature in
:data:`FUNCTIONS`; the embedding layer (``Linker.define_wasi``) wraps each one as a host function
that finds the Store's :class:`WasiCtx` and the calling instance's memory.  Arguments arrive as
unsigned integers; a method returns an :class:`~.abi.Errno` (or raises :class:`~.errors.WasiError`,
or an ``OSError`` that is mapped to its errno); ``proc_exit`` raises :class:`~.errors.ExitTrap`.

Guest memory is reached only through the :class:`GuestMemory` protocol, which the embedding layer
implements with the memory's checked accessors (through the page tables): no host pointer into
guest memory exists here.

Clocks are the host's (``time.time_ns``, ``time.monotonic_ns``, the process's and thread's CPU
time), as in Wasmtime: a WASI program's time is the time of the world around it.
"""

from __future__ import annotations

import os
import random
import select
import stat
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from ..errors import ArgumentTypeError, WasmtimeError
from ..runtime.threads import Blocked, Wake
from ..trace import TRACE
from .abi import (
    ALL_RIGHTS,
    DIR_RIGHTS,
    DIRENT,
    EVENT,
    EVENT_FD_READWRITE_HANGUP,
    FDSTAT,
    FILE_RIGHTS,
    FILESTAT,
    IOVEC,
    LOOKUP_SYMLINK_FOLLOW,
    PREOPENTYPE_DIR,
    PRESTAT,
    SUBCLOCK_ABSTIME,
    SUBSCRIPTION,
    SUBSCRIPTION_FD,
    U32,
    U64,
    WRITE_RIGHTS,
    Clock,
    Errno,
    Eventtype,
    Fdflags,
    Filetype,
    Fstflags,
    Oflags,
    Rights,
    Whence,
    from_host_errno,
)
from .config import DirPerms, FilePerms, Stdio, WasiConfig
from .errors import ExitTrap, WasiError
from .sandbox import resolve

if TYPE_CHECKING:
    from ..runtime.threads import Scheduler

MASK64 = (1 << 64) - 1
MAX_IO = 1 << 26  # the most one read or write moves (64 MiB), as a host would cap a syscall
WAIT_SLICE = 0.05  # seconds poll_oneoff waits between two looks at the time limit


class GuestMemory(Protocol):
    """The calling instance's linear memory, as the embedding layer hands it to a WASI function."""

    def read(self, addr: int, length: int) -> bytes:
        """``length`` bytes at ``addr``; WasiError(FAULT) when they are not all inside the memory."""
        ...

    def write(self, addr: int, data: bytes) -> None:
        """Write ``data`` at ``addr``; WasiError(FAULT) (nothing written) when it does not fit."""
        ...


# --------------------------------------------------------------------------- descriptors


class Stream:
    """A standard stream: the host's own descriptor, a file, a callback, or nothing."""

    def __init__(self, fd: int, stdio: Stdio) -> None:
        self.number = fd
        self.kind = stdio.kind
        self.host_fd: int | None = None
        self.callback: Callable[[bytes], object] | None = None
        self.owned = False
        if stdio.kind == "inherit":
            self.host_fd = fd
        elif stdio.kind == "file":
            path = str(stdio.target)
            flags = os.O_RDONLY if fd == 0 else os.O_WRONLY | os.O_CREAT | os.O_TRUNC
            self.host_fd = os.open(path, flags | os.O_CLOEXEC, 0o644)
            self.owned = True
        elif stdio.kind == "custom":
            self.callback = stdio.target  # type: ignore[assignment]
        self.rights = (Rights.FD_READ if fd == 0 else Rights.FD_WRITE) | Rights.POLL_FD_READWRITE
        self.rights |= Rights.FD_FDSTAT_SET_FLAGS
        self.fdflags = 0

    def filetype(self) -> Filetype:
        """A terminal is a character device (so wasi-libc's isatty is true), anything else a stream
        of unknown type, as Wasmtime reports its stdio."""
        if self.host_fd is not None and os.isatty(self.host_fd):
            return Filetype.CHARACTER_DEVICE
        return Filetype.UNKNOWN

    def read(self, n: int) -> bytes:
        if self.number != 0:
            raise WasiError(Errno.BADF)
        if self.host_fd is None:
            return b""
        return os.read(self.host_fd, n)

    def write(self, data: bytes) -> int:
        if self.number == 0:
            raise WasiError(Errno.BADF)
        if self.callback is not None:
            self.callback(bytes(data))
            return len(data)
        if self.host_fd is None:
            return len(data)
        view = memoryview(data)
        while view:
            n = os.write(self.host_fd, view)
            view = view[n:]
        return len(data)

    def close(self) -> None:
        if self.owned and self.host_fd is not None:
            os.close(self.host_fd)
        self.host_fd = None


class Handle:
    """A file or directory opened on the host (``os.open``), with its WASI rights."""

    def __init__(self, host_fd: int, *, is_dir: bool, rights: int, inheriting: int, fdflags: int, perms: tuple) -> None:
        self.host_fd = host_fd
        self.is_dir = is_dir
        self.rights = rights
        self.inheriting = inheriting
        self.fdflags = fdflags
        self.perms = perms  # (DirPerms, FilePerms) of the preopen it came from
        self.preopen_name: str | None = None

    def close(self) -> None:
        os.close(self.host_fd)


Entry = Stream | Handle


def _filetype(mode: int) -> Filetype:
    if stat.S_ISREG(mode):
        return Filetype.REGULAR_FILE
    if stat.S_ISDIR(mode):
        return Filetype.DIRECTORY
    if stat.S_ISLNK(mode):
        return Filetype.SYMBOLIC_LINK
    if stat.S_ISCHR(mode):
        return Filetype.CHARACTER_DEVICE
    if stat.S_ISBLK(mode):
        return Filetype.BLOCK_DEVICE
    if stat.S_ISSOCK(mode):
        return Filetype.SOCKET_STREAM
    return Filetype.UNKNOWN


def _filestat(st: os.stat_result) -> bytes:
    return FILESTAT.pack(
        st.st_dev & MASK64,
        st.st_ino & MASK64,
        _filetype(st.st_mode),
        st.st_nlink,
        st.st_size,
        st.st_atime_ns,
        st.st_mtime_ns,
        st.st_ctime_ns,
    )


def close_descriptors(fds: dict[int, Entry]) -> None:
    """Close every descriptor of a descriptor table and empty it (a Store's finalizer calls this with
    the table alone: holding the WasiCtx would keep the Store, and so its machine, alive)."""
    for entry in fds.values():
        try:
            entry.close()
        except OSError:
            pass
    fds.clear()


def _readable(host_fd: int, wait: float = 0) -> bool:
    """Would a read of ``host_fd`` return at once (data, end of file, or an error)?  ``wait``: seconds
    to wait for it to become so."""
    try:
        return bool(select.select([host_fd], [], [], wait)[0])
    except (OSError, ValueError):
        return True  # the read itself reports it


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >> 63 else v


# --------------------------------------------------------------------------- the context

FUNCTIONS: dict[str, tuple[str, str]] = {}  # import name -> (param types, result types): "i" i32, "I" i64


def wasi(params: str, results: str = "i"):
    """Register a method as the WASI function of its name, with its wasm signature."""

    def register(fn):
        FUNCTIONS[fn.__name__] = (params, results)
        return fn

    return register


class WasiCtx:
    """One Store's WASI state, made from a :class:`WasiConfig` by ``Store.set_wasi``."""

    def __init__(self, config: WasiConfig) -> None:
        if not isinstance(config, WasiConfig):
            raise ArgumentTypeError(f"Store.set_wasi: expected a WasiConfig, not {type(config).__name__}")
        # surrogateescape: a host argument that is not UTF-8 reaches the guest as its original bytes
        self.args = [a.encode("utf-8", "surrogateescape") + b"\0" for a in config.argv]
        self.environ = [f"{k}={v}".encode("utf-8", "surrogateescape") + b"\0" for k, v in config.env]
        self.fds: dict[int, Entry] = {}
        # Called every WAIT_SLICE seconds while poll_oneoff waits: the Store's time limit and
        # interrupts raise their trap from it (the embedding layer sets it).
        self.check_time: Callable[..., None] = lambda what="": None
        # wasi-threads (set by Store.set_wasi when the config has threads): the Store's Scheduler.  While
        # it runs threads, the clocks are its virtual time and a call that would wait blocks the thread.
        self.threads: Scheduler | None = None
        self.virtual_time = config.virtual_time
        self.spawn_threads = config.threads  # thread-spawn may start threads (else the scheduler keeps time only)
        self._clock_base: dict[int, int] = {}
        if config.virtual_time:  # every clock virtual from the first call on; realtime from the epoch
            self._clock_base = {int(c): 0 for c in Clock}
            self._clock_base[Clock.REALTIME] = config.clock_epoch
        self._random = None if config.random_seed is None else random.Random(config.random_seed)
        self._resumed: Wake | None = None  # why a blocked call runs again (see _blocking)
        self._calling: tuple[str, GuestMemory, tuple[int, ...]] | None = None
        try:
            for fd, stdio in enumerate((config.stdin, config.stdout, config.stderr)):
                self.fds[fd] = Stream(fd, stdio)
            for pre in config.preopens:
                host_fd = os.open(pre.host, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                h = Handle(
                    host_fd,
                    is_dir=True,
                    rights=DIR_RIGHTS,
                    inheriting=ALL_RIGHTS,
                    fdflags=0,
                    perms=(pre.dir_perms, pre.file_perms),
                )
                h.preopen_name = pre.guest
                self.fds[len(self.fds)] = h
        except OSError as exc:
            self.close()
            raise WasmtimeError(f"WASI configuration: {exc.strerror}: {exc.filename!r}") from None

    def close(self) -> None:
        """Close every host descriptor the guest holds (the Store is done with WASI)."""
        close_descriptors(self.fds)

    # ------------------------------------------------------------------ helpers

    def call(self, name: str, mem: GuestMemory, args: tuple[int, ...]) -> int:
        """Run WASI function ``name``: the errno it returns (a ``host_call`` trace event when traced)."""
        if TRACE.host_call is None:
            return self._call(name, mem, args)
        start = time.perf_counter_ns()
        errno = Errno.SUCCESS
        result = errno.name
        try:
            errno = Errno(self._call(name, mem, args))
            result = errno.name
        except Blocked:
            result = "blocked (the thread waits; the call runs again when it goes on)"
            raise
        finally:
            TRACE.host_call(
                name=name,
                args=", ".join(f"{a:#x}" for a in args),
                result=result,
                duration_ns=time.perf_counter_ns() - start,
            )
        return errno

    def _call(self, name: str, mem: GuestMemory, args: tuple[int, ...]) -> int:
        self._calling = (name, mem, args)
        try:
            return int(getattr(self, name)(mem, *args))
        except WasiError as exc:
            return int(exc.errno)
        except OSError as exc:
            return int(from_host_errno(exc.errno))
        except (OverflowError, ValueError):
            return int(Errno.INVAL)

    def entry(self, fd: int) -> Entry:
        e = self.fds.get(fd)
        if e is None:
            raise WasiError(Errno.BADF)
        return e

    def handle(self, fd: int, right: int = 0) -> Handle:
        e = self.entry(fd)
        if not isinstance(e, Handle):
            raise WasiError(Errno.BADF if right else Errno.INVAL)
        if right and not e.rights & right:
            raise WasiError(Errno.BADF if right & (Rights.FD_READ | Rights.FD_WRITE) else Errno.NOTCAPABLE)
        return e

    def file(self, fd: int, right: int = 0) -> Handle:
        h = self.handle(fd, right)
        if h.is_dir:
            raise WasiError(Errno.ISDIR if right & (Rights.FD_READ | Rights.FD_WRITE) else Errno.BADF)
        return h

    def dir(self, fd: int) -> Handle:
        e = self.entry(fd)
        if not isinstance(e, Handle) or not e.is_dir:
            raise WasiError(Errno.NOTDIR)
        return e

    @staticmethod
    def path(mem: GuestMemory, ptr: int, length: int) -> str:
        raw = mem.read(ptr, length)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise WasiError(Errno.ILSEQ) from None

    @staticmethod
    def may_write_tree(h: Handle) -> None:
        if h.perms[0] is DirPerms.READ_ONLY:
            raise WasiError(Errno.PERM)

    def new_fd(self, entry: Entry) -> int:
        fd = 3
        while fd in self.fds:
            fd += 1
        self.fds[fd] = entry
        return fd

    @staticmethod
    def iovecs(mem: GuestMemory, ptr: int, count: int) -> list[tuple[int, int]]:
        if count > 1024:
            raise WasiError(Errno.INVAL)
        raw = mem.read(ptr, count * IOVEC.size)
        return [IOVEC.unpack_from(raw, i * IOVEC.size) for i in range(count)]

    @staticmethod
    def put(mem: GuestMemory, ptr: int, data: bytes) -> int:
        mem.write(ptr, data)
        return Errno.SUCCESS

    # ------------------------------------------------------------------ args, environment

    @staticmethod
    def _strings_get(mem: GuestMemory, strings: list[bytes], ptrs: int, buf: int) -> int:
        table = bytearray()
        for s in strings:
            table += U32.pack(buf)
            mem.write(buf, s)
            buf += len(s)
        mem.write(ptrs, bytes(table))
        return Errno.SUCCESS

    @wasi("ii")
    def args_get(self, mem, argv, argv_buf):
        return self._strings_get(mem, self.args, argv, argv_buf)

    @wasi("ii")
    def args_sizes_get(self, mem, argc_ptr, size_ptr):
        mem.write(argc_ptr, U32.pack(len(self.args)))
        return self.put(mem, size_ptr, U32.pack(sum(map(len, self.args))))

    @wasi("ii")
    def environ_get(self, mem, environ, environ_buf):
        return self._strings_get(mem, self.environ, environ, environ_buf)

    @wasi("ii")
    def environ_sizes_get(self, mem, count_ptr, size_ptr):
        mem.write(count_ptr, U32.pack(len(self.environ)))
        return self.put(mem, size_ptr, U32.pack(sum(map(len, self.environ))))

    # ------------------------------------------------------------------ clocks, random, process

    _CLOCKS = {
        Clock.REALTIME: (time.CLOCK_REALTIME, time.time_ns),
        Clock.MONOTONIC: (time.CLOCK_MONOTONIC, time.monotonic_ns),
        Clock.PROCESS_CPUTIME_ID: (time.CLOCK_PROCESS_CPUTIME_ID, time.process_time_ns),
        Clock.THREAD_CPUTIME_ID: (time.CLOCK_THREAD_CPUTIME_ID, time.thread_time_ns),
    }

    def _clock(self, clock_id: int):
        clock = self._CLOCKS.get(clock_id)  # type: ignore[call-overload]
        if clock is None:
            raise WasiError(Errno.INVAL)
        threads = self.threads
        if threads is not None and threads.active:  # virtual time: the realtime clock starts at the host's
            base = self._clock_base.setdefault(clock_id, time.time_ns() if clock_id == Clock.REALTIME else 0)

            def now() -> int:
                threads.account()  # the code run since the last switch or reading
                return base + threads.now_ns

            return clock[0], now
        return clock

    def _blocking(self) -> bool:
        """May this call block its thread (wasi-threads running, and not a call resumed already)?"""
        return self.threads is not None and self.threads.can_block() and self._resumed is None

    def _block(self, what: str, *, deadline_ns: int | None = None, fd: int | None = None) -> Blocked:
        """The Blocked to raise: the thread waits; when it goes on, the same call runs again with
        ``_resumed`` saying why (it must not block again) and its errno is the call's result."""
        assert self._calling is not None
        name, mem, args = self._calling

        def complete(why: Wake) -> list[int]:
            self._resumed = why
            try:
                return [self.call(name, mem, args)]
            finally:
                self._resumed = None

        return Blocked(what, complete, deadline_ns=deadline_ns, fd=fd)

    @wasi("ii")
    def clock_res_get(self, mem, clock_id, res_ptr):
        host_id, _ = self._clock(clock_id)
        res = max(1, int(time.clock_getres(host_id) * 1e9))
        return self.put(mem, res_ptr, U64.pack(res))

    @wasi("iIi")
    def clock_time_get(self, mem, clock_id, _precision, time_ptr):
        _, now = self._clock(clock_id)
        return self.put(mem, time_ptr, U64.pack(now() & MASK64))

    @wasi("ii")
    def random_get(self, mem, buf, length):
        if length:
            mem.read(buf, length)  # FAULT before any work when it does not fit
            fill = os.urandom if self._random is None else self._random.randbytes
            for off in range(0, length, 1 << 20):
                mem.write(buf + off, fill(min(1 << 20, length - off)))
        return Errno.SUCCESS

    @wasi("i", "")
    def proc_exit(self, _mem, code):
        raise ExitTrap(code)

    @wasi("i")
    def proc_raise(self, _mem, _sig):
        return Errno.NOSYS

    @wasi("")
    def sched_yield(self, _mem):
        return Errno.SUCCESS

    # ------------------------------------------------------------------ descriptors

    @wasi("iIIi")
    def fd_advise(self, _mem, fd, offset, length, advice):
        h = self.file(fd)
        if advice > 5:
            raise WasiError(Errno.INVAL)
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(h.host_fd, _signed64(offset), _signed64(length), advice)
        return Errno.SUCCESS

    @wasi("iII")
    def fd_allocate(self, _mem, fd, offset, length):
        h = self.file(fd, Rights.FD_ALLOCATE)
        if _signed64(offset) < 0 or _signed64(length) <= 0:
            raise WasiError(Errno.INVAL)
        os.posix_fallocate(h.host_fd, offset, length)
        return Errno.SUCCESS

    @wasi("i")
    def fd_close(self, _mem, fd):
        self.entry(fd).close()
        del self.fds[fd]
        return Errno.SUCCESS

    @wasi("i")
    def fd_datasync(self, _mem, fd):
        os.fdatasync(self.handle(fd, Rights.FD_DATASYNC).host_fd)
        return Errno.SUCCESS

    @wasi("i")
    def fd_sync(self, _mem, fd):
        os.fsync(self.handle(fd, Rights.FD_SYNC).host_fd)
        return Errno.SUCCESS

    @wasi("ii")
    def fd_fdstat_get(self, mem, fd, ptr):
        e = self.entry(fd)
        if isinstance(e, Stream):
            record = FDSTAT.pack(e.filetype(), e.fdflags, e.rights, 0)
        else:
            st = os.fstat(e.host_fd)
            record = FDSTAT.pack(_filetype(st.st_mode), e.fdflags, e.rights, e.inheriting)
        return self.put(mem, ptr, record)

    @wasi("ii")
    def fd_fdstat_set_flags(self, _mem, fd, flags):
        e = self.entry(fd)
        if flags & ~0x1F:
            raise WasiError(Errno.INVAL)
        if flags & (Fdflags.DSYNC | Fdflags.RSYNC | Fdflags.SYNC):
            raise WasiError(Errno.NOTSUP)  # Linux cannot change them on an open descriptor
        if isinstance(e, Handle):
            if e.is_dir and flags & Fdflags.APPEND:
                raise WasiError(Errno.BADF)
            import fcntl

            host = fcntl.fcntl(e.host_fd, fcntl.F_GETFL) & ~(os.O_APPEND | os.O_NONBLOCK)
            host |= (os.O_APPEND if flags & Fdflags.APPEND else 0) | (os.O_NONBLOCK if flags & Fdflags.NONBLOCK else 0)
            fcntl.fcntl(e.host_fd, fcntl.F_SETFL, host)
        elif flags & Fdflags.APPEND:
            raise WasiError(Errno.INVAL)
        e.fdflags = flags
        return Errno.SUCCESS

    @wasi("iII")
    def fd_fdstat_set_rights(self, _mem, fd, base, inheriting):
        e = self.entry(fd)
        if base & ~int(e.rights):
            raise WasiError(Errno.NOTCAPABLE)  # rights only ever shrink
        if isinstance(e, Handle):
            if inheriting & ~int(e.inheriting):
                raise WasiError(Errno.NOTCAPABLE)
            e.inheriting = inheriting
        e.rights = base
        return Errno.SUCCESS

    @wasi("ii")
    def fd_filestat_get(self, mem, fd, ptr):
        e = self.entry(fd)
        if isinstance(e, Stream):
            if e.host_fd is not None:
                return self.put(mem, ptr, _filestat(os.fstat(e.host_fd)))
            return self.put(mem, ptr, FILESTAT.pack(0, 0, Filetype.UNKNOWN, 1, 0, 0, 0, 0))
        return self.put(mem, ptr, _filestat(os.fstat(e.host_fd)))

    @wasi("iI")
    def fd_filestat_set_size(self, _mem, fd, size):
        h = self.file(fd)  # not opened for writing: the host's INVAL, as Wasmtime
        if _signed64(size) < 0:
            raise WasiError(Errno.INVAL)
        os.ftruncate(h.host_fd, size)
        return Errno.SUCCESS

    @staticmethod
    def _times(current: os.stat_result, atim: int, mtim: int, flags: int) -> tuple[int, int]:
        if flags & ~0xF or (flags & Fstflags.ATIM and flags & Fstflags.ATIM_NOW):
            raise WasiError(Errno.INVAL)
        if flags & Fstflags.MTIM and flags & Fstflags.MTIM_NOW:
            raise WasiError(Errno.INVAL)
        now = time.time_ns()
        a = atim if flags & Fstflags.ATIM else now if flags & Fstflags.ATIM_NOW else current.st_atime_ns
        m = mtim if flags & Fstflags.MTIM else now if flags & Fstflags.MTIM_NOW else current.st_mtime_ns
        return a, m

    @wasi("iIIi")
    def fd_filestat_set_times(self, _mem, fd, atim, mtim, flags):
        h = self.handle(fd)
        times = self._times(os.fstat(h.host_fd), atim, mtim, flags)
        os.utime(h.host_fd, ns=times)
        return Errno.SUCCESS

    def _read_into(self, mem: GuestMemory, iovs: list[tuple[int, int]], read: Callable[[int], bytes]) -> int:
        total = 0
        for buf, length in iovs:
            if not length:
                continue
            mem.read(buf, length)  # FAULT up front
            data = read(min(length, MAX_IO))
            mem.write(buf, data)
            total += len(data)
            if len(data) < length:
                break
        return total

    def _gather(self, mem: GuestMemory, iovs: list[tuple[int, int]]) -> bytes:
        parts = [mem.read(buf, length) for buf, length in iovs if length]
        return b"".join(parts)

    @wasi("iiii")
    def fd_read(self, mem, fd, iovs_ptr, count, nread_ptr):
        e = self.entry(fd)
        iovs = self.iovecs(mem, iovs_ptr, count)
        if isinstance(e, Stream):
            if e.host_fd is not None and self._blocking() and not _readable(e.host_fd):
                raise self._block(f"fd_read on fd {fd}", fd=e.host_fd)
            if e.host_fd is not None and not e.fdflags & Fdflags.NONBLOCK:
                while not _readable(e.host_fd, WAIT_SLICE):  # a read that would wait: the time limit still holds
                    self.check_time(f"in fd_read on fd {fd}")
            n = self._read_into(mem, iovs, e.read)
        else:
            h = self.file(fd, Rights.FD_READ)
            n = self._read_into(mem, iovs, lambda k: os.read(h.host_fd, k))
        return self.put(mem, nread_ptr, U32.pack(n))

    @wasi("iiiIi")
    def fd_pread(self, mem, fd, iovs_ptr, count, offset, nread_ptr):
        e = self.entry(fd)
        if isinstance(e, Stream):
            raise WasiError(Errno.SPIPE)
        h = self.file(fd, Rights.FD_READ)
        iovs = self.iovecs(mem, iovs_ptr, count)
        pos = [offset]

        def pread(k: int) -> bytes:
            data = os.pread(h.host_fd, k, pos[0])
            pos[0] += len(data)
            return data

        return self.put(mem, nread_ptr, U32.pack(self._read_into(mem, iovs, pread)))

    @wasi("iiii")
    def fd_write(self, mem, fd, iovs_ptr, count, nwritten_ptr):
        e = self.entry(fd)
        data = self._gather(mem, self.iovecs(mem, iovs_ptr, count))
        if isinstance(e, Stream):
            n = e.write(data)
        else:
            h = self.file(fd, Rights.FD_WRITE)
            n = os.write(h.host_fd, data)
        return self.put(mem, nwritten_ptr, U32.pack(n))

    @wasi("iiiIi")
    def fd_pwrite(self, mem, fd, iovs_ptr, count, offset, nwritten_ptr):
        e = self.entry(fd)
        if isinstance(e, Stream):
            raise WasiError(Errno.SPIPE)
        h = self.file(fd, Rights.FD_WRITE)
        data = self._gather(mem, self.iovecs(mem, iovs_ptr, count))
        n = os.pwrite(h.host_fd, data, offset)
        return self.put(mem, nwritten_ptr, U32.pack(n))

    @wasi("iIii")
    def fd_seek(self, mem, fd, offset, whence, newoffset_ptr):
        e = self.entry(fd)
        if isinstance(e, Stream):
            raise WasiError(Errno.SPIPE)
        h = self.handle(fd, Rights.FD_SEEK if (whence, offset) != (Whence.CUR, 0) else Rights.FD_TELL)
        if h.is_dir:
            raise WasiError(Errno.BADF)
        if whence not in (Whence.SET, Whence.CUR, Whence.END):
            raise WasiError(Errno.INVAL)
        host_whence = {Whence.SET: os.SEEK_SET, Whence.CUR: os.SEEK_CUR, Whence.END: os.SEEK_END}[whence]
        pos = os.lseek(h.host_fd, _signed64(offset), host_whence)
        return self.put(mem, newoffset_ptr, U64.pack(pos))

    @wasi("ii")
    def fd_tell(self, mem, fd, ptr):
        e = self.entry(fd)
        if isinstance(e, Stream):
            raise WasiError(Errno.SPIPE)
        h = self.file(fd, Rights.FD_TELL)
        return self.put(mem, ptr, U64.pack(os.lseek(h.host_fd, 0, os.SEEK_CUR)))

    @wasi("ii")
    def fd_renumber(self, _mem, fd, to):
        e = self.entry(fd)
        old = self.entry(to)
        if fd != to:
            old.close()
            self.fds[to] = e
            del self.fds[fd]
        return Errno.SUCCESS

    @wasi("ii")
    def fd_prestat_get(self, mem, fd, ptr):
        e = self.entry(fd)
        if not isinstance(e, Handle) or e.preopen_name is None:
            raise WasiError(Errno.BADF)
        return self.put(mem, ptr, PRESTAT.pack(PREOPENTYPE_DIR, len(e.preopen_name.encode())))

    @wasi("iii")
    def fd_prestat_dir_name(self, mem, fd, path, length):
        e = self.entry(fd)
        if not isinstance(e, Handle) or e.preopen_name is None:
            raise WasiError(Errno.BADF)
        name = e.preopen_name.encode()
        if length < len(name):
            raise WasiError(Errno.NAMETOOLONG)
        return self.put(mem, path, name)

    @wasi("iiiIi")
    def fd_readdir(self, mem, fd, buf, buf_len, cookie, bufused_ptr):
        h = self.dir(fd)
        if not h.rights & Rights.FD_READDIR:
            raise WasiError(Errno.NOTCAPABLE)
        entries = [(".", os.fstat(h.host_fd).st_ino, Filetype.DIRECTORY)]
        parent = os.stat("..", dir_fd=h.host_fd)
        entries.append(("..", parent.st_ino, Filetype.DIRECTORY))
        with os.scandir(h.host_fd) as it:
            for d in sorted(it, key=lambda d: d.name):
                try:
                    kind = _filetype(d.stat(follow_symlinks=False).st_mode)
                except OSError:
                    kind = Filetype.UNKNOWN
                entries.append((d.name, d.inode(), kind))
        out = bytearray()
        for index in range(cookie, len(entries)):
            name, ino, kind = entries[index]
            raw = name.encode()
            out += DIRENT.pack(index + 1, ino & MASK64, len(raw), kind) + raw
            if len(out) >= buf_len:
                break
        data = bytes(out[:buf_len])
        if data:
            mem.write(buf, data)
        return self.put(mem, bufused_ptr, U32.pack(len(data)))

    # ------------------------------------------------------------------ paths

    @wasi("iiiiiIIii")
    def path_open(self, mem, fd, dirflags, path_ptr, path_len, oflags, rights, inheriting, fdflags, fd_ptr):
        d = self.dir(fd)
        if not d.rights & Rights.PATH_OPEN:
            raise WasiError(Errno.NOTCAPABLE)
        path = self.path(mem, path_ptr, path_len)
        if oflags & ~0xF or fdflags & ~0x1F:
            raise WasiError(Errno.INVAL)
        rights &= d.inheriting
        inheriting &= d.inheriting
        want_write = bool(rights & WRITE_RIGHTS) or bool(fdflags & Fdflags.APPEND)
        want_read = bool(rights & (Rights.FD_READ | Rights.FD_READDIR))
        dir_perms, file_perms = d.perms
        if oflags & (Oflags.CREAT | Oflags.TRUNC):
            self.may_write_tree(d)
            want_write = want_write or bool(oflags & Oflags.TRUNC)
        if want_write and file_perms is FilePerms.READ_ONLY:
            raise WasiError(Errno.PERM)
        flags = os.O_CLOEXEC | os.O_NOFOLLOW
        if oflags & Oflags.DIRECTORY:
            flags |= os.O_DIRECTORY | os.O_RDONLY
            if oflags & Oflags.TRUNC:
                raise WasiError(Errno.INVAL)
        elif want_write:
            flags |= os.O_RDWR if want_read and file_perms is not FilePerms.WRITE_ONLY else os.O_WRONLY
        else:
            flags |= os.O_RDONLY
        flags |= os.O_CREAT if oflags & Oflags.CREAT else 0
        flags |= os.O_EXCL if oflags & Oflags.EXCL else 0
        flags |= os.O_TRUNC if oflags & Oflags.TRUNC else 0
        flags |= os.O_APPEND if fdflags & Fdflags.APPEND else 0
        flags |= os.O_NONBLOCK if fdflags & Fdflags.NONBLOCK else 0
        flags |= os.O_DSYNC if fdflags & (Fdflags.DSYNC | Fdflags.RSYNC) else 0
        flags |= os.O_SYNC if fdflags & Fdflags.SYNC else 0
        with resolve(d.host_fd, path, follow=bool(dirflags & LOOKUP_SYMLINK_FOLLOW)) as r:
            if r.must_be_dir:
                flags |= os.O_DIRECTORY
            host_fd = os.open(r.name, flags, 0o666, dir_fd=r.dir_fd)  # a directory for writing: ISDIR
        try:
            is_dir = stat.S_ISDIR(os.fstat(host_fd).st_mode)
        except OSError:
            os.close(host_fd)
            raise
        base = rights & (DIR_RIGHTS if is_dir else FILE_RIGHTS)
        if not is_dir and not flags & (os.O_WRONLY | os.O_RDWR):
            base &= ~WRITE_RIGHTS
        if not is_dir and flags & os.O_WRONLY:
            base &= ~Rights.FD_READ
        h = Handle(host_fd, is_dir=is_dir, rights=base, inheriting=inheriting, fdflags=fdflags, perms=d.perms)
        new = self.new_fd(h)
        return self.put(mem, fd_ptr, U32.pack(new))

    @wasi("iiiii")
    def path_filestat_get(self, mem, fd, flags, path_ptr, path_len, buf):
        d = self.dir(fd)
        path = self.path(mem, path_ptr, path_len)
        with resolve(d.host_fd, path, follow=bool(flags & LOOKUP_SYMLINK_FOLLOW)) as r:
            st = os.stat(r.name, dir_fd=r.dir_fd, follow_symlinks=False)
        return self.put(mem, buf, _filestat(st))

    @wasi("iiiiIIi")
    def path_filestat_set_times(self, mem, fd, flags, path_ptr, path_len, atim, mtim, fst):
        d = self.dir(fd)
        path = self.path(mem, path_ptr, path_len)
        with resolve(d.host_fd, path, follow=bool(flags & LOOKUP_SYMLINK_FOLLOW)) as r:
            st = os.stat(r.name, dir_fd=r.dir_fd, follow_symlinks=False)
            times = self._times(st, atim, mtim, fst)
            os.utime(r.name, ns=times, dir_fd=r.dir_fd, follow_symlinks=False)
        return Errno.SUCCESS

    @wasi("iii")
    def path_create_directory(self, mem, fd, path_ptr, path_len):
        d = self.dir(fd)
        self.may_write_tree(d)
        with resolve(d.host_fd, self.path(mem, path_ptr, path_len), follow=False) as r:
            os.mkdir(r.name, 0o777, dir_fd=r.dir_fd)
        return Errno.SUCCESS

    @wasi("iii")
    def path_remove_directory(self, mem, fd, path_ptr, path_len):
        d = self.dir(fd)
        self.may_write_tree(d)
        with resolve(d.host_fd, self.path(mem, path_ptr, path_len), follow=False) as r:
            if r.name == ".":
                raise WasiError(Errno.INVAL)
            os.rmdir(r.name, dir_fd=r.dir_fd)
        return Errno.SUCCESS

    @wasi("iii")
    def path_unlink_file(self, mem, fd, path_ptr, path_len):
        d = self.dir(fd)
        self.may_write_tree(d)
        with resolve(d.host_fd, self.path(mem, path_ptr, path_len), follow=False) as r:
            st = os.stat(r.name, dir_fd=r.dir_fd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                raise WasiError(Errno.ISDIR)
            if r.must_be_dir:
                raise WasiError(Errno.NOTDIR)
            os.unlink(r.name, dir_fd=r.dir_fd)
        return Errno.SUCCESS

    @wasi("iiiiii")
    def path_rename(self, mem, fd, old_ptr, old_len, new_fd, new_ptr, new_len):
        d_old, d_new = self.dir(fd), self.dir(new_fd)
        self.may_write_tree(d_old)
        self.may_write_tree(d_new)
        old, new = self.path(mem, old_ptr, old_len), self.path(mem, new_ptr, new_len)
        with resolve(d_old.host_fd, old, follow=False) as a, resolve(d_new.host_fd, new, follow=False) as b:
            if "." in (a.name, b.name):
                raise WasiError(Errno.BUSY)
            if b.must_be_dir and not a.must_be_dir:
                st = os.stat(a.name, dir_fd=a.dir_fd, follow_symlinks=False)
                if not stat.S_ISDIR(st.st_mode):
                    raise WasiError(Errno.NOTDIR)
            os.rename(a.name, b.name, src_dir_fd=a.dir_fd, dst_dir_fd=b.dir_fd)
        return Errno.SUCCESS

    @wasi("iiiiiii")
    def path_link(self, mem, fd, flags, old_ptr, old_len, new_fd, new_ptr, new_len):
        d_old, d_new = self.dir(fd), self.dir(new_fd)
        self.may_write_tree(d_new)
        old, new = self.path(mem, old_ptr, old_len), self.path(mem, new_ptr, new_len)
        follow = bool(flags & LOOKUP_SYMLINK_FOLLOW)
        with resolve(d_old.host_fd, old, follow=follow) as a, resolve(d_new.host_fd, new, follow=False) as b:
            if b.must_be_dir:
                raise WasiError(Errno.NOENT if not os.path.lexists(b.name) else Errno.EXIST)
            os.link(a.name, b.name, src_dir_fd=a.dir_fd, dst_dir_fd=b.dir_fd, follow_symlinks=False)
        return Errno.SUCCESS

    @wasi("iiiii")
    def path_symlink(self, mem, old_ptr, old_len, fd, new_ptr, new_len):
        d = self.dir(fd)
        self.may_write_tree(d)
        target = self.path(mem, old_ptr, old_len)
        if "\0" in target:
            raise WasiError(Errno.INVAL)
        with resolve(d.host_fd, self.path(mem, new_ptr, new_len), follow=False) as r:
            if r.must_be_dir:
                raise WasiError(Errno.NOENT)
            os.symlink(target, r.name, dir_fd=r.dir_fd)
        return Errno.SUCCESS

    @wasi("iiiiii")
    def path_readlink(self, mem, fd, path_ptr, path_len, buf, buf_len, bufused_ptr):
        d = self.dir(fd)
        with resolve(d.host_fd, self.path(mem, path_ptr, path_len), follow=False) as r:
            target = os.fsencode(os.readlink(r.name, dir_fd=r.dir_fd))
        data = target[:buf_len]
        if data:
            mem.write(buf, data)
        return self.put(mem, bufused_ptr, U32.pack(len(data)))

    # ------------------------------------------------------------------ poll, sockets

    @wasi("iiii")
    def poll_oneoff(self, mem, in_ptr, out_ptr, nsubs, nevents_ptr):
        if nsubs == 0:
            raise WasiError(Errno.INVAL)
        raw = mem.read(in_ptr, nsubs * SUBSCRIPTION.size)
        mem.read(out_ptr, nsubs * EVENT.size)  # FAULT before waiting
        events: list[bytes] = []
        timeout: float | None = None
        clock_subs = []
        reads: dict[int, list[int]] = {}
        writes: dict[int, list[int]] = {}
        for i in range(nsubs):
            off = i * SUBSCRIPTION.size
            userdata, tag = SUBSCRIPTION_FD.unpack_from(raw, off)[:2]
            if tag == Eventtype.CLOCK:
                _, _, clock_id, deadline, _precision, flags = SUBSCRIPTION.unpack_from(raw, off)
                try:
                    _, now = self._clock(clock_id)
                except WasiError as exc:
                    events.append(EVENT.pack(userdata, exc.errno, tag, 0, 0))
                    continue
                wait = (deadline - now()) if flags & SUBCLOCK_ABSTIME else deadline
                seconds = max(0.0, wait / 1e9)
                clock_subs.append((seconds, userdata))
                timeout = seconds if timeout is None else min(timeout, seconds)
            elif tag in (Eventtype.FD_READ, Eventtype.FD_WRITE):
                fd = SUBSCRIPTION_FD.unpack_from(raw, off)[2]
                e = self.fds.get(fd)
                if e is None:
                    events.append(EVENT.pack(userdata, Errno.BADF, tag, 0, 0))
                    continue
                host_fd = e.host_fd
                if isinstance(e, Handle) and not e.is_dir:  # a regular file is always ready
                    assert host_fd is not None
                    nbytes = 0
                    if tag == Eventtype.FD_READ:
                        st = os.fstat(host_fd)
                        nbytes = max(0, st.st_size - os.lseek(host_fd, 0, os.SEEK_CUR))
                    events.append(EVENT.pack(userdata, 0, tag, nbytes, 0))
                elif host_fd is None:  # a stream with nowhere behind it: ready (end of file / a sink)
                    hangup = EVENT_FD_READWRITE_HANGUP if tag == Eventtype.FD_READ else 0
                    events.append(EVENT.pack(userdata, 0, tag, 0, hangup))
                elif isinstance(e, Handle):
                    events.append(EVENT.pack(userdata, Errno.BADF, tag, 0, 0))
                else:
                    (reads if tag == Eventtype.FD_READ else writes).setdefault(host_fd, []).append(userdata)
            else:
                events.append(EVENT.pack(userdata, Errno.INVAL, tag, 0, 0))
        if not events and (reads or writes or clock_subs) and self.threads is not None and self.threads.active:
            events = self._poll_threads(reads, writes, clock_subs, timeout)
        if not events and (reads or writes or clock_subs):
            start = time.monotonic()
            while True:
                waited = time.monotonic() - start
                left = None if timeout is None else max(0.0, timeout - waited)
                step = WAIT_SLICE if left is None else min(WAIT_SLICE, left)
                if reads or writes:
                    ready_r, ready_w, _ = select.select(list(reads), list(writes), [], step)
                else:
                    ready_r, ready_w = [], []
                    time.sleep(step)
                for host_fd in ready_r:
                    events += [EVENT.pack(u, 0, Eventtype.FD_READ, 1, 0) for u in reads[host_fd]]
                for host_fd in ready_w:
                    events += [EVENT.pack(u, 0, Eventtype.FD_WRITE, 1, 0) for u in writes[host_fd]]
                waited = time.monotonic() - start
                if not events and timeout is not None and waited >= timeout:
                    events += [EVENT.pack(u, 0, Eventtype.CLOCK, 0, 0) for s, u in clock_subs if s <= waited]
                if events:
                    break
                self.check_time()
        mem.write(out_ptr, b"".join(events))
        return self.put(mem, nevents_ptr, U32.pack(len(events)))

    def _poll_threads(self, reads: dict, writes: dict, clock_subs: list, timeout: float | None) -> list[bytes]:
        """poll_oneoff while wasi-threads run: the descriptors ready now, else the thread blocks until
        one is or its first timeout passes in virtual time; when it goes on, what is due."""
        events: list[bytes] = []
        ready_r, ready_w, _ = select.select(list(reads), list(writes), [], 0)
        for host_fd in ready_r:
            events += [EVENT.pack(u, 0, Eventtype.FD_READ, 1, 0) for u in reads[host_fd]]
        for host_fd in ready_w:
            events += [EVENT.pack(u, 0, Eventtype.FD_WRITE, 1, 0) for u in writes[host_fd]]
        if events:
            return events
        if self._resumed is Wake.TIMED_OUT or timeout == 0:
            return [EVENT.pack(u, 0, Eventtype.CLOCK, 0, 0) for s, u in clock_subs if s <= (timeout or 0)]
        if not self._blocking():
            if self.virtual_time and clock_subs and not reads and not writes and timeout is not None:
                assert self.threads is not None  # (virtual time: a nested call sleeps in virtual time too)
                self.threads.now_ns += int(timeout * 1e9)
                return [EVENT.pack(u, 0, Eventtype.CLOCK, 0, 0) for s, u in clock_subs if s <= timeout]
            return events  # a nested call cannot block: wait in host time, as without threads
        assert self.threads is not None
        deadline = None if timeout is None else self.threads.now_ns + int(timeout * 1e9)
        raise self._block("poll_oneoff", deadline_ns=deadline, fd=min(reads) if reads else None)

    def _socket(self, fd: int) -> None:
        """Preview 1 opens no socket (there is no socket() call), so every descriptor is not one."""
        self.entry(fd)
        raise WasiError(Errno.NOTSOCK)

    @wasi("iii")
    def sock_accept(self, _mem, fd, _flags, _fd_ptr):
        self._socket(fd)

    @wasi("iiiiii")
    def sock_recv(self, _mem, fd, _ri, _ri_len, _flags, _len_ptr, _flags_ptr):
        self._socket(fd)

    @wasi("iiiii")
    def sock_send(self, _mem, fd, _si, _si_len, _flags, _len_ptr):
        self._socket(fd)

    @wasi("ii")
    def sock_shutdown(self, _mem, fd, _how):
        self._socket(fd)
