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


@dataclass(frozen=True, slots=True)
class DeviceIssue:
    """One misuse: which device, when (virtual tick), where, and the fixed message."""

    device: str
    kind: IssueKind
    message: str
    time: int
    register: str | None = None
    offset: int | None = None
    size: int | None = None
    value: int | None = None

    def format(self) -> str:
        return f"[t={self.time}] {self.device}: {self.message}"


def make_issue(
    device: str,
    kind: IssueKind,
    time: int,
    *,
    register: str | None = None,
    offset: int | None = None,
    size: int | None = None,
    value: int | None = None,
    **extra: object,
) -> DeviceIssue:
    message = kind.value.format(
        register=register,
        offset=offset if offset is not None else 0,
        size=size if size is not None else 0,
        value=value if value is not None else 0,
        **extra,
    )
    return DeviceIssue(device, kind, message, time, register, offset, size, value)
