"""Reading native RV64 ELF executables (pyelftools) and loading them into an address space.

:func:`read_elf` turns the file into plain data (entry, ``PT_LOAD`` segments with their bytes,
symbols), checking what a loader relies on; any malformed input, whatever pyelftools raises for
it, is one :class:`ElfError` naming the file.  :func:`load_elf` maps each segment page by page at
its virtual address with the permissions its flags give (pages shared by two segments get both);
bytes past the file size are zero.  Native firmware (hwsim/driver/firmware.py) loads the same
segments at physical addresses.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field

from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from .._elfparse import PARSE_ERRORS
from ..errors import ConfigError
from ..mmu.bits import PAGE_SIZE, Pte

EM_RISCV = "EM_RISCV"
PF_X, PF_W, PF_R = 1, 2, 4
ADDRESS_LIMIT = 1 << 64


class ElfError(ConfigError):
    """An ELF file hwsim cannot load; the message names the file and the problem."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One ``PT_LOAD`` segment: ``memsz`` bytes at ``va``, the first ``len(data)`` from the file."""

    va: int
    memsz: int
    flags: int
    data: bytes


@dataclass
class ElfImage:
    entry: int
    symbols: dict[str, int] = field(default_factory=dict)
    segments: list[tuple[int, int, int]] = field(default_factory=list)  # (va, size, flags)

    def symbol_at(self, va: int) -> str | None:
        """The nearest symbol at or below ``va``, as ``name+0xoff``."""
        best = None
        for name, addr in self.symbols.items():
            if addr <= va and (best is None or addr > best[1]):
                best = (name, addr)
        if best is None:
            return None
        return best[0] if best[1] == va else f"{best[0]}+{va - best[1]:#x}"


@dataclass(frozen=True)
class ElfContents:
    """What a loader needs from an ELF file, read and checked by :func:`read_elf`."""

    name: str
    entry: int
    segments: tuple[Segment, ...]
    symbols: dict[str, int]

    def image(self) -> ElfImage:
        return ElfImage(self.entry, dict(self.symbols), [(s.va, s.memsz, s.flags) for s in self.segments])


def read_source(source: str | os.PathLike | bytes) -> tuple[bytes, str]:
    """``(bytes, name)`` of a path or of bytes (named ``<bytes>``)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), "<bytes>"
    name = os.fspath(source)
    try:
        with open(name, "rb") as f:
            return f.read(), name
    except OSError as exc:
        raise ElfError(f"cannot read ELF file {name!r}: {exc.strerror}") from None


def read_elf(data: bytes, name: str = "<bytes>") -> ElfContents:
    """The entry point, loadable segments and symbols of a 64-bit RISC-V ELF executable.

    Symbols are functions, objects and untyped labels, without RISC-V mapping symbols (``$x``,
    ``$d``) and local labels (``.L``).  Raises :class:`ElfError` naming ``name`` for anything else.
    """
    try:
        elf = ELFFile(io.BytesIO(data))
        if elf.elfclass != 64 or elf["e_machine"] != EM_RISCV:
            raise ElfError(f"{name}: not a 64-bit RISC-V ELF file (class {elf.elfclass}, machine {elf['e_machine']})")
        entry = elf.header["e_entry"]
        segments = []
        for seg in elf.iter_segments():
            if seg["p_type"] != "PT_LOAD" or not seg["p_memsz"]:
                continue
            va, memsz, filesz, offset = seg["p_vaddr"], seg["p_memsz"], seg["p_filesz"], seg["p_offset"]
            where = f"{name}: the segment at {va:#x}"
            if filesz > memsz:
                raise ElfError(f"{where} has p_filesz {filesz:#x} larger than p_memsz {memsz:#x}")
            if offset + filesz > len(data):
                raise ElfError(
                    f"{where} needs file bytes [{offset:#x}, {offset + filesz:#x}), past the end of "
                    f"the {len(data)}-byte file (truncated?)"
                )
            if va + memsz > ADDRESS_LIMIT:
                raise ElfError(f"{where} of {memsz:#x} bytes ends past the 64-bit address space")
            segments.append(Segment(va, memsz, seg["p_flags"], data[offset : offset + filesz]))
        symbols = {}
        symtab = elf.get_section_by_name(".symtab")
        if isinstance(symtab, SymbolTableSection):
            for sym in symtab.iter_symbols():
                if (
                    sym.name
                    and sym["st_info"]["type"] in ("STT_FUNC", "STT_OBJECT", "STT_NOTYPE")
                    and not sym.name.startswith(("$", ".L"))
                ):
                    symbols[sym.name] = sym["st_value"]
    except ElfError:
        raise
    except PARSE_ERRORS as exc:
        raise ElfError(f"{name}: malformed ELF file: {_describe(exc)}") from None
    if not segments:
        raise ElfError(f"{name}: no loadable segment")
    return ElfContents(name, entry, tuple(segments), symbols)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."


def load_elf(machine, space, source: str | os.PathLike | bytes, *, user: bool = True) -> ElfImage:
    """Map ``source`` (a path or the file's bytes) into ``space`` with frames from ``machine``."""
    contents = read_elf(*read_source(source))
    pages: dict[int, int] = {}
    for seg in contents.segments:
        start = seg.va & ~(PAGE_SIZE - 1)
        end = (seg.va + seg.memsz + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
        if (end - start) // PAGE_SIZE > machine.frames.available:
            raise ElfError(
                f"{contents.name}: the segment at {seg.va:#x} needs {(end - start) // PAGE_SIZE} pages, "
                f"more than the machine's {machine.frames.available} free frames"
            )
        for va in range(start, end, PAGE_SIZE):
            pages[va] = pages.get(va, 0) | seg.flags
    frames = {}
    for va, flags in sorted(pages.items()):
        perm = (
            (Pte.R if flags & (PF_R | PF_X) else 0)
            | (Pte.W | Pte.R if flags & PF_W else 0)
            | (Pte.X if flags & PF_X else 0)
            | (Pte.U if user else 0)
        )
        pa = machine.frames.alloc()
        space.map(va, pa, PAGE_SIZE, Pte(perm))
        frames[va] = pa
    for seg in contents.segments:
        content, va, pos = seg.data, seg.va, 0
        while pos < len(content):
            page = (va + pos) & ~(PAGE_SIZE - 1)
            chunk = min(len(content) - pos, page + PAGE_SIZE - (va + pos))
            machine.phys.write(frames[page] + (va + pos - page), content[pos : pos + chunk])
            pos += chunk
    machine.code_changed()
    return contents.image()
