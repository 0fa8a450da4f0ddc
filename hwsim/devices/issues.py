"""Guest misuse of a device, recorded rather than printed: each kind has one fixed message."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class IssueKind(enum.Enum):
    """What the guest did wrong; the value is the message template."""

    UNKNOWN_OFFSET = "{op} of {size} byte(s) at offset {offset:#x}: no register there"
    BAD_WIDTH = "{size}-byte {op} at offset {offset:#x}: {register} is {width} byte(s) wide at offset {reg_offset:#x}"
    READ_ONLY = "write of {value:#x} to read-only register {register}"
    WRITE_ONLY = "read of write-only register {register} (reads as 0)"
    RESERVED_BITS = "write of {value:#x} to {register} sets reserved bits {bits:#x} (ignored)"
    BAD_VALUE = "{register}: {detail}"
    PROTOCOL = "{detail}"  # a sequence error that is no single register's fault (e.g. complete without claim)
    LOST_DATA = "{detail}"  # the device had to drop data the driver did not take in time (e.g. a FIFO overrun)


@dataclass(frozen=True, slots=True)
class DeviceIssue:
    """One misuse: which device, when (virtual tick), where, and the fixed message.

    ``pc`` is the guest load or store the device was serving when it found the misuse (None when
    none was: a clock event, a host call), and ``source`` names that code (a driver's C line) when
    whoever runs the guest can (see ``System.add_access_locator``)."""

    device: str
    kind: IssueKind
    message: str
    time: int
    register: str | None = None
    offset: int | None = None
    size: int | None = None
    value: int | None = None
    pc: int | None = None
    source: str = ""

    def format(self) -> str:
        text = f"[t={self.time}] {self.device}: {self.message}"
        return f"{text}\n    by the driver at {self.source}" if self.source else text


def make_issue(
    device: str,
    kind: IssueKind,
    time: int,
    *,
    register: str | None = None,
    offset: int | None = None,
    size: int | None = None,
    value: int | None = None,
    pc: int | None = None,
    source: str = "",
    **extra: object,
) -> DeviceIssue:
    message = kind.value.format(
        register=register,
        offset=offset if offset is not None else 0,
        size=size if size is not None else 0,
        value=value if value is not None else 0,
        **extra,
    )
    return DeviceIssue(device, kind, message, time, register, offset, size, value, pc, source)
