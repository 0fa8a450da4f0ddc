"""Loading a native RV64 ELF executable into an address space (pyelftools), with its symbols.

Each ``PT_LOAD`` segment is mapped page by page at its virtual address with
the permissions its flags give (pages shared by two segments get both);
bytes past the file size are zero.  Symbols are kept for reports.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from ..errors import ConfigError
from ..mmu.bits import PAGE_SIZE, Pte

EM_RISCV = "EM_RISCV"
PF_X, PF_W, PF_R = 1, 2, 4


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


def load_elf(machine, space, source: str | os.PathLike | bytes, *, user: bool = True) -> ElfImage:
    """Map ``source`` (a path or the file's bytes) into ``space`` with frames from ``machine``."""
    if isinstance(source, (bytes, bytearray)):
        data, name = bytes(source), "<bytes>"
    else:
        name = os.fspath(source)
        try:
            with open(name, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise ConfigError(f"cannot read ELF file {name!r}: {exc.strerror}") from None
    try:
        elf = ELFFile(io.BytesIO(data))
        if elf.elfclass != 64 or elf["e_machine"] != EM_RISCV:
            raise ConfigError(f"{name}: not a 64-bit RISC-V ELF file (class {elf.elfclass}, machine {elf['e_machine']})")
        loads = [s for s in elf.iter_segments() if s["p_type"] == "PT_LOAD" and s["p_memsz"]]
        if not loads:
            raise ConfigError(f"{name}: no loadable segment")
        pages: dict[int, int] = {}
        for seg in loads:
            start = seg["p_vaddr"] & ~(PAGE_SIZE - 1)
            end = (seg["p_vaddr"] + seg["p_memsz"] + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
            for va in range(start, end, PAGE_SIZE):
                pages[va] = pages.get(va, 0) | seg["p_flags"]
        frames = {}
        for va, flags in sorted(pages.items()):
            perm = (Pte.R if flags & (PF_R | PF_X) else 0) | (Pte.W | Pte.R if flags & PF_W else 0) | \
                (Pte.X if flags & PF_X else 0) | (Pte.U if user else 0)
            pa = machine.frames.alloc()
            space.map(va, pa, PAGE_SIZE, Pte(perm))
            frames[va] = pa
        for seg in loads:
            content = seg.data()[:seg["p_filesz"]]
            va = seg["p_vaddr"]
            pos = 0
            while pos < len(content):
                page = (va + pos) & ~(PAGE_SIZE - 1)
                chunk = min(len(content) - pos, page + PAGE_SIZE - (va + pos))
                machine.phys.write(frames[page] + (va + pos - page), content[pos:pos + chunk])
                pos += chunk
        image = ElfImage(elf.header["e_entry"], segments=[(s["p_vaddr"], s["p_memsz"], s["p_flags"]) for s in loads])
        symtab = elf.get_section_by_name(".symtab")
        if symtab is not None:
            for sym in symtab.iter_symbols():
                if sym.name and sym["st_info"]["type"] in ("STT_FUNC", "STT_OBJECT", "STT_NOTYPE"):
                    image.symbols[sym.name] = sym["st_value"]
    except ELFError as exc:
        raise ConfigError(f"{name}: malformed ELF file: {exc}") from None
    machine.code_changed()
    return image
