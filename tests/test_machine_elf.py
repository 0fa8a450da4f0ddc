"""hwsim.machine.elf and native firmware loading: malformed ELF files are one clear error naming the file.

A truncated or corrupted firmware ELF used to end in whatever pyelftools raised (ELFParseError,
AssertionError, OverflowError, ZeroDivisionError in a DWARF line table, ...).  Every truncation and
hypothesis-driven byte flips of a real firmware build go through both loaders and the DWARF source
lines: only HwsimErrors may escape.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from property_scale import examples

from hwsim.board import DEFAULT_BOARD, load_board
from hwsim.cli import main
from hwsim.driver import build_driver
from hwsim.driver.firmware import FirmwareRun
from hwsim.errors import HwsimError
from hwsim.machine import Machine
from hwsim.machine.elf import ElfError, load_elf, read_elf

REPO = Path(__file__).resolve().parents[1]
BOARD = load_board(DEFAULT_BOARD)


@pytest.fixture(scope="module")
def firmware() -> bytes:
    return build_driver(REPO / "drivers" / "uart16550", native=True).read_bytes()


def load_both_ways(data: bytes) -> None:
    """Map ``data`` into a user address space and load it as firmware, with its DWARF lines."""
    m = Machine(ram_size=16 << 20)
    try:
        load_elf(m, m.new_address_space(asid=1), data)
    except HwsimError:
        pass
    run = FirmwareRun(BOARD.build(options={"uart0": {"backend": "memory"}}), data, name="fw.elf")
    for pc in (run.image.entry, *list(run.image.symbols.values())[:4]):
        run.where(pc)


def test_the_real_build_loads(firmware):
    contents = read_elf(firmware, "fw.elf")
    assert "probe" in contents.symbols and contents.segments
    assert not any(name.startswith(("$", ".L")) for name in contents.symbols)
    load_both_ways(firmware)


def test_every_truncation_is_one_clear_error(firmware):
    for length in [*range(0, 256, 3), *range(256, len(firmware), 401)]:
        with pytest.raises(ElfError) as info:
            read_elf(firmware[:length], "fw.elf")
        assert str(info.value).startswith("fw.elf: "), length
        try:
            load_both_ways(firmware[:length])
        except HwsimError as exc:
            assert "fw.elf" in str(exc) or "<bytes>" in str(exc), exc


def test_segment_checks(firmware, tmp_path):
    phoff = struct.unpack_from("<Q", firmware, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", firmware, 0x36)
    load = next(
        phoff + i * phentsize for i in range(phnum) if struct.unpack_from("<I", firmware, phoff + i * phentsize)[0] == 1
    )  # PT_LOAD
    _offset, va, _pa, _filesz, memsz = struct.unpack_from("<QQQQQ", firmware, load + 8)
    bad = bytearray(firmware)
    struct.pack_into("<Q", bad, load + 32, memsz + 0x1000)  # p_filesz > p_memsz
    with pytest.raises(
        ElfError,
        match=rf"fw.elf: the segment at {va:#x} has p_filesz {memsz + 0x1000:#x} larger "
        rf"than p_memsz {memsz:#x}",
    ):
        read_elf(bytes(bad), "fw.elf")
    struct.pack_into("<QQ", bad, load + 32, 1 << 62, 1 << 62)  # p_filesz past the file (and the index range)
    with pytest.raises(ElfError, match=r"fw.elf: the segment at .* past the end of the \d+-byte file \(truncated\?\)"):
        read_elf(bytes(bad), "fw.elf")
    bad = bytearray(firmware)
    struct.pack_into("<Q", bad, load + 40, 1 << 40)  # p_memsz: a terabyte
    path = tmp_path / "fw.elf"
    path.write_bytes(bad)
    m = Machine(ram_size=16 << 20)
    with pytest.raises(
        ElfError,
        match=rf"{path}: the segment at {va:#x} needs 268435456 pages, more than the "
        rf"machine's \d+ free frames",
    ):
        load_elf(m, m.new_address_space(asid=1), path)
    with pytest.raises(ElfError, match=rf"fw.elf: the segment at {va:#x} does not fit the board's RAM"):
        FirmwareRun(BOARD.build(), bytes(bad), name="fw.elf")
    with pytest.raises(ElfError, match="fw.elf: not a 64-bit RISC-V ELF file"):
        read_elf(firmware[:0x12] + b"\x3e\x00" + firmware[0x14:], "fw.elf")  # EM_X86_64
    with pytest.raises(ElfError, match="cannot read ELF file '/no/such.elf': No such file or directory"):
        load_elf(m, m.new_address_space(asid=2), "/no/such.elf")


def test_missing_symbols_name_the_file(firmware):
    renamed = firmware.replace(b"\0probe\0", b"\0Probe\0")  # in every string table
    with pytest.raises(HwsimError, match="fw.elf: the firmware has no probe symbol"):
        FirmwareRun(BOARD.build(), renamed, name="fw.elf")
    run = FirmwareRun(BOARD.build(), firmware, name="fw.elf")
    with pytest.raises(HwsimError, match="fw.elf: the firmware has no symbol 'nope'"):
        run.run("nope")


def test_hwsim_run_names_a_truncated_firmware_file(firmware, tmp_path, capsys):
    path = tmp_path / "fw.elf"
    path.write_bytes(firmware[: len(firmware) // 3])
    assert main(["run", "virt", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"hwsim: error: {path}: ") and "Traceback" not in err


def test_corrupt_dwarf_costs_the_source_lines_only(firmware):
    """A DWARF line table with line_range 0 made pyelftools divide by zero while a fault was being reported."""
    run = FirmwareRun(BOARD.build(), firmware, name="fw.elf")
    probe = run.image.symbols["probe"]
    assert " at " in run.where(probe)  # the real build has line information
    bad = bytearray(firmware)
    lines = firmware.index(b".debug_line\0")  # the section's name; find its header through the section table
    shoff = struct.unpack_from("<Q", firmware, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", firmware, 0x3A)
    strtab = struct.unpack_from("<Q", firmware, shoff + shstrndx * shentsize + 24)[0]
    for i in range(shnum):
        (name,) = struct.unpack_from("<I", firmware, shoff + i * shentsize)
        if strtab + name == lines:
            offset = struct.unpack_from("<Q", firmware, shoff + i * shentsize + 24)[0]
            break
    else:
        pytest.fail("no .debug_line section")
    (version,) = struct.unpack_from("<H", firmware, offset + 4)
    line_range_at = offset + 4 + 2 + (2 if version >= 5 else 0) + 4 + 1 + (1 if version >= 4 else 0) + 1 + 1
    bad[line_range_at] = 0
    run = FirmwareRun(BOARD.build(), bytes(bad), name="fw.elf")
    assert run.where(probe) == "probe"


ELF_FUZZ = settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])


@ELF_FUZZ
@given(data=st.data())
def test_byte_flips_give_only_hwsim_errors(firmware, data):
    blob = bytearray(firmware)
    for _ in range(data.draw(st.integers(1, 6), label="flips")):
        if data.draw(st.booleans(), label="in the headers"):
            pos = data.draw(st.integers(0, 0x200), label="position")
        else:
            pos = data.draw(st.integers(0, len(blob) - 1), label="position")
        blob[pos] = data.draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF]) | st.integers(0, 255), label="byte")
    try:
        load_both_ways(bytes(blob))
    except HwsimError:
        pass  # anything else escaping fails the test
