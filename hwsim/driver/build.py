"""``hwsim build DRIVER_DIR``: C driver sources to one wasm module with zig cc, cached by content.

All ``*.c`` files of the directory are compiled together for wasm32, with
``drivers/include`` (``hwsim.h``) on the include path, ``probe`` exported and
DWARF line information kept (``-g``) for reports.  The result is
``DRIVER_DIR/build/<name>.wasm``; it is rebuilt only when a source, the
header or the flags change.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from .. import _paths
from .._zig import zig_cc
from ..errors import HwsimError

FLAGS = (
    "-target",
    "wasm32-freestanding",
    "-O2",
    "-g",
    "-nostdlib",
    "-ffreestanding",
    "-Wl,--no-entry",
    "-Wl,--export=probe",
)  # other entry points: HWSIM_EXPORT("name") in the source


class BuildError(HwsimError):
    """A driver could not be built (no sources, no zig, or a compiler error)."""


def include_dir(driver_dir: Path) -> Path:
    """``drivers/include``: beside the driver directory, else hwsim's own (source tree or installed)."""
    for candidate in (driver_dir.parent / "include", _paths.include_dir()):
        if (candidate / "hwsim.h").is_file():
            return candidate
    raise BuildError(f"cannot find hwsim.h: expected {driver_dir.parent / 'include' / 'hwsim.h'}")


NATIVE_FLAGS = (
    "-target",
    "riscv64-freestanding",
    "-mcpu=baseline_rv64",
    "-mcmodel=medany",
    "-O2",
    "-g",
    "-nostdlib",
    "-ffreestanding",
    "-DHWSIM_NATIVE",
    "-Wl,-e,probe",
)


def firmware_dir() -> Path:
    """hwsim_native.c and link.ld: the source tree's firmware/, or an installed hwsim's copy."""
    return _paths.firmware_sources()


def build_driver(driver_dir: str | Path, *, force: bool = False, native: bool = False) -> Path:
    """Build to ``DRIVER_DIR/build/NAME.wasm``, or with ``native`` to ``DRIVER_DIR/build/NAME.elf``
    (riscv64, with firmware/hwsim_native.c and firmware/link.ld; in hwsim's source tree the ELF goes to
    firmware/build/NAME.elf)."""
    driver_dir = Path(driver_dir)
    if not driver_dir.is_dir():
        raise BuildError(f"driver directory {str(driver_dir)!r} does not exist")
    sources = sorted(driver_dir.glob("*.c"))
    if not sources:
        raise BuildError(f"{driver_dir}: no .c files to build")
    include = include_dir(driver_dir)
    flags: tuple = FLAGS
    name = driver_dir.resolve().name
    if native:
        fw = firmware_dir()
        sources = [*sources, fw / "hwsim_native.c"]
        flags = (*NATIVE_FLAGS, f"-Wl,-T,{fw / 'link.ld'}")
        extra = [fw / "link.ld"]
        # ELF files go to firmware/build/ in a source tree; an installed hwsim keeps them beside the driver.
        out = (fw / "build" if _paths.in_source_tree(fw) else driver_dir / "build") / f"{name}.elf"
    else:
        extra = []
        out = driver_dir / "build" / f"{name}.wasm"
    digest = hashlib.sha256()
    # Every shared header counts (a driver may include virtio_blk_example.h, nvme_lite.h, ...).
    for path in [*sources, *sorted(include.glob("*.h")), *extra]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    digest.update(" ".join(flags).encode())
    return zig_cc(
        [*flags, f"-I{include}", *map(str, sources)],
        out,
        digest.hexdigest(),
        force=force,
        what=str(driver_dir),
        error=BuildError,
        hint="building drivers needs zig: pip install ziglang (or: pip install 'hwsim[drivers]')",
    )
