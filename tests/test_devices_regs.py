"""hwsim.devices.regs and base: declared registers, access rules, guest-issue records, options, trace hooks."""

from __future__ import annotations

import pytest

import hwsim.board  # noqa: F401 - registers every device type, the IOMMU included
from hwsim.devices import Device, IrqLine, IssueKind, Option, OptionError, VirtualClock, register_device
from hwsim.devices.base import DEVICE_TYPES, known_types
from hwsim.devices.regs import Field, RegAccess, Register, RegisterLayout
from hwsim.errors import ConfigError

RO, WO, RW, W1C, RC = RegAccess.RO, RegAccess.WO, RegAccess.RW, RegAccess.W1C, RegAccess.RC

LAYOUT = RegisterLayout(
    "toy",
    [
        Register("ID", 0x0, 4, RO, reset=0x1234),
        Register("CMD", 0x4, 4, WO),
        Register(
            "CTRL",
            0x8,
            4,
            RW,
            writable=0xFF,
            reserved=0xFF00,
            reset=0x10_0000,
            doc="Control.",
            fields=(Field("EN", 0), Field("MODE", 1, 3, doc="mode")),
        ),
        Register("STATUS", 0xC, 4, W1C, writable=0x3, reset=0x7),
        Register("EVENTS", 0x10, 4, RC, reset=0x5),
        Register("MIXED", 0x14, 4, RW, writable=0xF0F, w1c=0xF00),
        Register("BYTE", 0x18, 1, RW),
        Register("LOW", 0x19, 1, RW, when="!bank"),
        Register("HIGH", 0x19, 1, RW, when="bank"),
    ],
)


class Toy(Device):
    TYPE = "toy-test"
    LAYOUT = LAYOUT
    OPTIONS = {
        "speed": Option(int, 3, "how fast", minimum=1, maximum=9),
        "colour": Option(str, "red", "paint", choices=("red", "blue")),
        "fast": Option(bool, False, "flag"),
    }

    def __init__(self, **kw):
        super().__init__(**kw)
        self.writes = []
        self.regs.on_write("CMD", lambda new, old: self.writes.append(new))


@pytest.fixture
def toy():
    return Toy(name="toy0")


def messages(dev):
    return [i.message for i in dev.issues]


def test_reset_values_and_plain_rw(toy):
    assert toy.mmio_read(0x0, 4) == 0x1234
    assert toy.mmio_read(0x8, 4) == 0x10_0000
    toy.mmio_write(0x8, 4, 0x3F)
    assert toy.mmio_read(0x8, 4) == 0x10_003F  # bits outside ``writable`` keep their value
    assert toy.issues == []


def test_write_to_read_only_is_an_issue_and_changes_nothing(toy):
    toy.mmio_write(0x0, 4, 0x55)
    assert toy.mmio_read(0x0, 4) == 0x1234
    (issue,) = toy.issues
    assert (issue.kind, issue.device, issue.register, issue.offset, issue.size, issue.value) == (
        IssueKind.READ_ONLY,
        "toy0",
        "ID",
        0,
        4,
        0x55,
    )
    assert issue.message == "write of 0x55 to read-only register ID"
    assert issue.format() == "[t=0] toy0: write of 0x55 to read-only register ID"


def test_write_only_register(toy):
    toy.mmio_write(0x4, 4, 9)
    assert toy.writes == [9]
    assert toy.mmio_read(0x4, 4) == 0
    assert messages(toy) == ["read of write-only register CMD (reads as 0)"]


def test_reserved_bits_are_reported_and_ignored(toy):
    toy.mmio_write(0x8, 4, 0x1201)
    assert toy.mmio_read(0x8, 4) == 0x10_0001
    assert messages(toy) == ["write of 0x1201 to CTRL sets reserved bits 0x1200 (ignored)"]


def test_w1c_rc_and_mixed(toy):
    toy.mmio_write(0xC, 4, 0x1)
    assert toy.mmio_read(0xC, 4) == 0x6  # bit 0 cleared; bit 2 is read-only
    toy.mmio_write(0xC, 4, 0x4)
    assert toy.mmio_read(0xC, 4) == 0x6
    assert toy.mmio_read(0x10, 4) == 0x5
    assert toy.mmio_read(0x10, 4) == 0  # read to clear
    toy.regs["MIXED"] = 0xF00
    toy.mmio_write(0x14, 4, 0x30A)
    assert toy.mmio_read(0x14, 4) == 0xC0A  # 0x300 cleared (W1C), 0x00A written
    assert toy.issues == []


def test_width_and_offset_misuse(toy):
    assert toy.mmio_read(0x8, 1) == 0
    toy.mmio_write(0xA, 2, 1)
    assert toy.mmio_read(0x40, 4) == 0
    toy.mmio_write(0x41, 1, 7)
    assert messages(toy) == [
        "1-byte read at offset 0x8: CTRL is 4 byte(s) wide at offset 0x8",
        "2-byte write at offset 0xa: CTRL is 4 byte(s) wide at offset 0x8",
        "read of 4 byte(s) at offset 0x40: no register there",
        "write of 1 byte(s) at offset 0x41: no register there",
    ]
    assert [i.kind for i in toy.issues] == [
        IssueKind.BAD_WIDTH,
        IssueKind.BAD_WIDTH,
        IssueKind.UNKNOWN_OFFSET,
        IssueKind.UNKNOWN_OFFSET,
    ]


def test_banked_registers(toy):
    toy.mmio_write(0x19, 1, 0xAA)
    toy.regs.set_flag("bank")
    assert toy.regs.flags == {"bank"}
    assert toy.mmio_read(0x19, 1) == 0
    toy.mmio_write(0x19, 1, 0xBB)
    toy.regs.set_flag("bank", False)
    assert toy.mmio_read(0x19, 1) == 0xAA
    assert (toy.regs["LOW"], toy.regs["HIGH"]) == (0xAA, 0xBB)


def test_issue_time_is_virtual_and_issues_are_capped():
    clock = VirtualClock()
    dev = Toy(name="t", clock=clock)
    clock.advance(42)
    dev.mmio_write(0, 4, 1)
    assert dev.issues[0].time == 42
    for _ in range(1100):
        dev.mmio_write(0, 4, 1)
    assert len(dev.issues) == 1000 and dev.issues_dropped == 101


def test_reset_restores_registers_but_keeps_issues(toy):
    toy.mmio_write(0x8, 4, 0x1)
    toy.mmio_write(0x0, 4, 0x1)
    toy.reset()
    assert toy.mmio_read(0x8, 4) == 0x10_0000 and len(toy.issues) == 1


def test_trace_hooks_see_every_access():
    clock = VirtualClock()
    dev = Toy(name="t", clock=clock)
    seen = []
    dev.add_tracer(seen.append)
    dev.mmio_write(0x8, 4, 1)
    clock.advance(5)
    dev.mmio_read(0x8, 4)
    assert [(e.device, e.op, e.offset, e.size, e.value, e.time) for e in seen] == [
        ("t", "write", 8, 4, 1, 0),
        ("t", "read", 8, 4, 0x10_0001, 5),
    ]


def test_options_defaults_and_errors():
    assert Toy(name="t").options == {"speed": 3, "colour": "red", "fast": False}
    assert Toy(name="t", speed=9, fast=True).options["speed"] == 9
    cases = [
        ({"sped": 1}, "option 'sped': unknown option for toy-test (known: colour, fast, speed)"),
        ({"speed": "3"}, "option 'speed': must be an integer, not str '3'"),
        ({"speed": True}, "option 'speed': must be an integer, not bool True"),
        ({"speed": 0}, "option 'speed': must be at least 1, not 0"),
        ({"speed": 10}, "option 'speed': must be at most 9, not 10"),
        ({"colour": "green"}, "option 'colour': must be one of 'red', 'blue', not 'green'"),
        ({"fast": 1}, "option 'fast': must be a boolean, not int 1"),
    ]
    for given, message in cases:
        with pytest.raises(OptionError) as info:
            Toy(name="t", **given)
        assert str(info.value) == message


def test_layout_declaration_errors():
    with pytest.raises(ConfigError, match="register A: width must be 1, 2 or 4 bytes"):
        RegisterLayout("x", [Register("A", 0, 8)])
    with pytest.raises(ConfigError, match=r"register A: offset 0x2 is not aligned to its width 4"):
        RegisterLayout("x", [Register("A", 2, 4)])
    with pytest.raises(ConfigError, match="register name A declared twice"):
        RegisterLayout("x", [Register("A", 0), Register("A", 4)])
    with pytest.raises(ConfigError, match="registers A and B overlap at offset 0x0"):
        RegisterLayout("x", [Register("A", 0), Register("B", 0)])
    with pytest.raises(ConfigError, match=r"reset value 0x100 does not fit in 1 byte"):
        RegisterLayout("x", [Register("A", 0, 1, reset=0x100)])
    RegisterLayout("x", [Register("R", 0, 4, RO), Register("W", 0, 4, WO)])  # IIR/FCR style is fine
    with pytest.raises(KeyError):
        Toy(name="t").regs.on_read("NOPE", lambda: 0)


def test_markdown_table():
    table = LAYOUT.markdown_table()
    assert table.splitlines()[0] == "| Offset | Name | Width | Access | Reset | Description |"
    assert "| 0x0008 | CTRL | 32 | RW | 0x100000 | Control. [0] EN; [3:1] MODE mode |" in table
    assert "| 0x0019 | HIGH (bank) | 8 | RW | 0x0 |  |" in table
    assert "| 0x0019 | LOW (not bank) | 8 | RW | 0x0 |  |" in table


def test_registry_and_irq_line():
    assert {"ns16550a", "plic", "clint", "dma", "riscv-iommu"} <= set(DEVICE_TYPES)
    assert known_types("interrupt-controller") == ["plic"]
    register_device(Toy)
    assert DEVICE_TYPES["toy-test"] is Toy

    class Other(Device):
        TYPE = "toy-test"
        LAYOUT = LAYOUT

    with pytest.raises(ConfigError, match="device type 'toy-test' registered twice"):
        register_device(Other)
    del DEVICE_TYPES["toy-test"]
    seen = []
    line = IrqLine(lambda n, level: seen.append((n, level)), 7)
    line.set(True)
    line.set(True)
    line.set(False)
    assert seen == [(7, True), (7, False)] and repr(line) == "IrqLine(number=7, level=False)"


def test_resolved_accesses_follow_bank_switches_hooks_and_resets(toy):
    toy.mmio_write(0x19, 1, 0x11)  # LOW, resolved and cached
    toy.regs.set_flag("bank")
    toy.mmio_write(0x19, 1, 0x22)  # now HIGH: the cached LOW access must not be used
    assert (toy.regs["LOW"], toy.regs["HIGH"]) == (0x11, 0x22)
    assert toy.mmio_read(0x19, 1) == 0x22
    toy.regs.set_flag("bank", False)
    assert toy.mmio_read(0x19, 1) == 0x11
    assert toy.mmio_read(0x18, 1) == 0
    toy.regs.on_read("BYTE", lambda: 0x5A)  # a hook attached after the access was resolved
    assert toy.mmio_read(0x18, 1) == 0x5A
    toy.mmio_write(0x8, 4, 0x3)
    toy.reset()  # a new values table: cached accesses must see it
    assert toy.mmio_read(0x8, 4) == 0x10_0000
    toy.mmio_write(0x8, 4, 0x1)
    assert toy.regs["CTRL"] == 0x10_0001


def test_misuse_is_reported_at_every_access_not_only_the_first(toy):
    for _ in range(3):
        toy.mmio_read(0x4, 4)  # write-only
        toy.mmio_write(0x0, 4, 1)  # read-only
        toy.mmio_write(0x8, 4, 0x100)  # reserved bits
        toy.mmio_read(0x40, 4)  # no register
    kinds = [i.kind for i in toy.issues]
    assert kinds == [IssueKind.WRITE_ONLY, IssueKind.READ_ONLY, IssueKind.RESERVED_BITS, IssueKind.UNKNOWN_OFFSET] * 3
    assert toy.mmio_read(0x10, 4) == 0x5 and toy.mmio_read(0x10, 4) == 0  # read-to-clear, cached or not


@pytest.mark.parametrize("hooked", [False, True])
def test_every_register_of_every_device_takes_a_write_by_the_declared_rule(hooked):
    """Differential, over every register every device type declares (the resolved writes take shortcuts for
    plainly writable registers): from a random old value, a guest write leaves the writable bits it sets,
    clears the write-1-to-clear bits it sets, keeps the rest, reports reserved bits, and a hook sees
    (new, old)."""
    import random

    from hwsim.devices.regs import RegisterFile

    rng = random.Random(15)
    issues: list = []
    seen: list = []
    for type_name, cls in sorted(DEVICE_TYPES.items()):
        layout = getattr(cls, "LAYOUT", None)
        if layout is None:
            continue
        regs = RegisterFile(layout, lambda kind, **details: issues.append((kind, details.get("register"))))
        for reg in layout:
            if reg.access in (RegAccess.RO, RegAccess.RC):
                continue
            if hooked:
                regs.on_write(reg.name, lambda new, old, name=reg.name: seen.append((name, new, old)))
            for _ in range(20):
                old = rng.getrandbits(8 * reg.width) & reg.full_mask
                value = rng.getrandbits(8 * reg.width + 4)  # (wider than the register sometimes)
                regs.values[reg.name] = old
                seen.clear(), issues.clear()
                if reg.when is not None:  # the bank that shows it
                    regs.set_flag(reg.when.lstrip("!"), not reg.when.startswith("!"))
                if regs.find(reg.offset, reg.width, write=True) is not reg:
                    continue  # (a write-only register shares the offset, and takes the write)
                regs.write(reg.offset, reg.width, value)
                v = value & reg.full_mask
                mask, clear = reg.write_mask & ~reg.reserved, reg.clear_mask
                expected = (old & ~(mask & ~clear)) | (v & mask & ~clear)
                expected &= ~(v & clear)
                assert regs.values[reg.name] == expected, (type_name, reg.name, hex(old), hex(value))
                assert (v & reg.reserved != 0) == ((IssueKind.RESERVED_BITS, reg.name) in issues), (type_name, reg.name)
                assert seen == ([(reg.name, expected, old)] if hooked else []), (type_name, reg.name)
