"""WASI preview 1's types as data: errnos, rights, flags and the byte layout of each record.

Names and values are the specification's (``wasi_snapshot_preview1``, witx ``typenames.witx``);
the struct formats are little-endian and padded as the C ABI of wasm32 lays the records out::

    fdstat    24 bytes   u8 filetype | u16 flags @2 | u64 rights_base @8 | u64 rights_inheriting @16
    filestat  64 bytes   dev | ino | u8 filetype @16 | nlink @24 | size | atim | mtim | ctim
    prestat    8 bytes   u8 tag (0 = dir) | u32 name length @4
    dirent    24 bytes   d_next | d_ino | u32 d_namlen @16 | u8 d_type @20   (the name follows)
    iovec      8 bytes   u32 buf | u32 buf_len
    subscription 48      userdata | u8 tag @8 | clock: u32 id @16, u64 timeout @24, u64 precision
                         @32, u16 flags @40 / fd_read, fd_write: u32 fd @16
    event     32 bytes   userdata | u16 error @8 | u8 type @10 | u64 nbytes @16 | u16 flags @24
"""

from __future__ import annotations

import errno as _host_errno
import struct
from enum import IntEnum, IntFlag


class Errno(IntEnum):
    """``errno``: what every WASI function returns (0 on success)."""

    SUCCESS = 0
    TOOBIG = 1  # E2BIG
    ACCES = 2
    ADDRINUSE = 3
    ADDRNOTAVAIL = 4
    AFNOSUPPORT = 5
    AGAIN = 6
    ALREADY = 7
    BADF = 8
    BADMSG = 9
    BUSY = 10
    CANCELED = 11
    CHILD = 12
    CONNABORTED = 13
    CONNREFUSED = 14
    CONNRESET = 15
    DEADLK = 16
    DESTADDRREQ = 17
    DOM = 18
    DQUOT = 19
    EXIST = 20
    FAULT = 21
    FBIG = 22
    HOSTUNREACH = 23
    IDRM = 24
    ILSEQ = 25
    INPROGRESS = 26
    INTR = 27
    INVAL = 28
    IO = 29
    ISCONN = 30
    ISDIR = 31
    LOOP = 32
    MFILE = 33
    MLINK = 34
    MSGSIZE = 35
    MULTIHOP = 36
    NAMETOOLONG = 37
    NETDOWN = 38
    NETRESET = 39
    NETUNREACH = 40
    NFILE = 41
    NOBUFS = 42
    NODEV = 43
    NOENT = 44
    NOEXEC = 45
    NOLCK = 46
    NOLINK = 47
    NOMEM = 48
    NOMSG = 49
    NOPROTOOPT = 50
    NOSPC = 51
    NOSYS = 52
    NOTCONN = 53
    NOTDIR = 54
    NOTEMPTY = 55
    NOTRECOVERABLE = 56
    NOTSOCK = 57
    NOTSUP = 58
    NOTTY = 59
    NXIO = 60
    OVERFLOW = 61
    OWNERDEAD = 62
    PERM = 63
    PIPE = 64
    PROTO = 65
    PROTONOSUPPORT = 66
    PROTOTYPE = 67
    RANGE = 68
    ROFS = 69
    SPIPE = 70
    SRCH = 71
    STALE = 72
    TIMEDOUT = 73
    TXTBSY = 74
    XDEV = 75
    NOTCAPABLE = 76


def _host_errnos() -> dict[int, Errno]:
    table: dict[int, Errno] = {}
    for e in Errno:
        name = "E2BIG" if e is Errno.TOOBIG else f"E{e.name}"
        code = getattr(_host_errno, name, None)
        if code is not None and e is not Errno.SUCCESS:
            table.setdefault(code, e)
    table[_host_errno.EOPNOTSUPP] = Errno.NOTSUP
    table[_host_errno.EWOULDBLOCK] = Errno.AGAIN
    return table


HOST_ERRNO = _host_errnos()


def from_host_errno(code: int | None) -> Errno:
    """The WASI errno for a host ``OSError.errno`` (EIO for one WASI has no name for)."""
    return HOST_ERRNO.get(code or 0, Errno.IO)


class Rights(IntFlag):
    FD_DATASYNC = 1 << 0
    FD_READ = 1 << 1
    FD_SEEK = 1 << 2
    FD_FDSTAT_SET_FLAGS = 1 << 3
    FD_SYNC = 1 << 4
    FD_TELL = 1 << 5
    FD_WRITE = 1 << 6
    FD_ADVISE = 1 << 7
    FD_ALLOCATE = 1 << 8
    PATH_CREATE_DIRECTORY = 1 << 9
    PATH_CREATE_FILE = 1 << 10
    PATH_LINK_SOURCE = 1 << 11
    PATH_LINK_TARGET = 1 << 12
    PATH_OPEN = 1 << 13
    FD_READDIR = 1 << 14
    PATH_READLINK = 1 << 15
    PATH_RENAME_SOURCE = 1 << 16
    PATH_RENAME_TARGET = 1 << 17
    PATH_FILESTAT_GET = 1 << 18
    PATH_FILESTAT_SET_SIZE = 1 << 19
    PATH_FILESTAT_SET_TIMES = 1 << 20
    FD_FILESTAT_GET = 1 << 21
    FD_FILESTAT_SET_SIZE = 1 << 22
    FD_FILESTAT_SET_TIMES = 1 << 23
    PATH_SYMLINK = 1 << 24
    PATH_REMOVE_DIRECTORY = 1 << 25
    PATH_UNLINK_FILE = 1 << 26
    POLL_FD_READWRITE = 1 << 27
    SOCK_SHUTDOWN = 1 << 28
    SOCK_ACCEPT = 1 << 29


ALL_RIGHTS = (1 << 30) - 1
# What a regular file's descriptor may do, and a directory's (wasmtime's preview 1 sets).
FILE_RIGHTS = (
    Rights.FD_DATASYNC
    | Rights.FD_READ
    | Rights.FD_SEEK
    | Rights.FD_FDSTAT_SET_FLAGS
    | Rights.FD_SYNC
    | Rights.FD_TELL
    | Rights.FD_WRITE
    | Rights.FD_ADVISE
    | Rights.FD_ALLOCATE
    | Rights.FD_FILESTAT_GET
    | Rights.FD_FILESTAT_SET_SIZE
    | Rights.FD_FILESTAT_SET_TIMES
    | Rights.POLL_FD_READWRITE
)
DIR_RIGHTS = ALL_RIGHTS & ~FILE_RIGHTS | Rights.FD_FDSTAT_SET_FLAGS | Rights.FD_SYNC | Rights.FD_DATASYNC
DIR_RIGHTS |= Rights.FD_FILESTAT_GET | Rights.FD_FILESTAT_SET_TIMES | Rights.FD_READDIR
# A file opened with any of these is opened for writing (wasi-libc asks for them on O_WRONLY; Wasmtime's set).
WRITE_RIGHTS = Rights.FD_WRITE | Rights.FD_ALLOCATE | Rights.FD_FILESTAT_SET_SIZE


class Filetype(IntEnum):
    UNKNOWN = 0
    BLOCK_DEVICE = 1
    CHARACTER_DEVICE = 2
    DIRECTORY = 3
    REGULAR_FILE = 4
    SOCKET_DGRAM = 5
    SOCKET_STREAM = 6
    SYMBOLIC_LINK = 7


class Whence(IntEnum):
    SET = 0
    CUR = 1
    END = 2


class Fdflags(IntFlag):
    APPEND = 1 << 0
    DSYNC = 1 << 1
    NONBLOCK = 1 << 2
    RSYNC = 1 << 3
    SYNC = 1 << 4


class Oflags(IntFlag):
    CREAT = 1 << 0
    DIRECTORY = 1 << 1
    EXCL = 1 << 2
    TRUNC = 1 << 3


LOOKUP_SYMLINK_FOLLOW = 1


class Fstflags(IntFlag):
    ATIM = 1 << 0
    ATIM_NOW = 1 << 1
    MTIM = 1 << 2
    MTIM_NOW = 1 << 3


class Clock(IntEnum):
    REALTIME = 0
    MONOTONIC = 1
    PROCESS_CPUTIME_ID = 2
    THREAD_CPUTIME_ID = 3


class Eventtype(IntEnum):
    CLOCK = 0
    FD_READ = 1
    FD_WRITE = 2


SUBCLOCK_ABSTIME = 1
EVENT_FD_READWRITE_HANGUP = 1
PREOPENTYPE_DIR = 0

FDSTAT = struct.Struct("<BxHxxxxQQ")
FILESTAT = struct.Struct("<QQBxxxxxxxQQQQQ")
PRESTAT = struct.Struct("<BxxxI")
DIRENT = struct.Struct("<QQIBxxx")
IOVEC = struct.Struct("<II")
SUBSCRIPTION = struct.Struct("<QBxxxxxxxIxxxxQQHxxxxxx")
SUBSCRIPTION_FD = struct.Struct("<QBxxxxxxxI")
EVENT = struct.Struct("<QHBxxxxxQHxxxxxx")
U32 = struct.Struct("<I")
U64 = struct.Struct("<Q")

assert FDSTAT.size == 24 and FILESTAT.size == 64 and PRESTAT.size == 8 and DIRENT.size == 24
assert SUBSCRIPTION.size == 48 and EVENT.size == 32
