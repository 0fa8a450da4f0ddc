"""Building position-independent modules from C with zig cc, cached by content.

The flags (zig 0.13 and later; wasm-ld warns that PIC output is "not yet stable")::

    every module   -target wasm32-freestanding -O2 -g -nostdlib -ffreestanding -fPIC
                   -fvisibility=default      zig compiles with hidden visibility by default: nothing
                                             would be exported
                   -Wl,--import-symbols      undefined symbols become imports (zig refuses wasm-ld's
                                             --unresolved-symbols=import-dynamic and --allow-undefined)
                   -Wl,--export=__wasm_call_ctors   wasm-ld does not export it from a PIC module
    library        -shared                   a side module: imports env.memory, env.__memory_base, ...
    main module    -fPIE -pie -Wl,--import-memory -Wl,--import-table -Wl,--export-dynamic -Wl,--no-entry

Libraries passed as inputs (``libraries=``) are linked against: their exports resolve
the module's symbols and their names go into its ``dylink.0`` NEEDED list.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from .. import _paths
from .._zig import zig_cc
from ._errors import ProcessError

COMMON = (
    "-target",
    "wasm32-freestanding",
    "-O2",
    "-g",
    "-nostdlib",
    "-ffreestanding",
    "-fPIC",
    "-fvisibility=default",
    "-Wl,--import-symbols",
    "-Wl,--export=__wasm_call_ctors",
)
LIBRARY = ("-shared",)
MAIN = ("-fPIE", "-pie", "-Wl,--import-memory", "-Wl,--import-table", "-Wl,--export-dynamic", "-Wl,--no-entry")


class BuildError(ProcessError):
    """A module could not be built (no zig, or a compiler or linker error)."""


def build_module(
    sources, output, *, main: bool = False, libraries=(), include_dirs=(), flags=(), force: bool = False
) -> Path:
    """Build C ``sources`` into the position-independent module ``output`` (a library, or with ``main``
    a main module); rebuilt only when a source, a library, the headers given or the flags change.

    ``include_dirs`` are added to hwsim's own include directory (``hwsim_process.h``).
    """
    sources = [Path(s) for s in sources]
    libraries = [Path(lib) for lib in libraries]
    output = Path(output)
    if not sources:
        raise BuildError(f"{output.name}: no sources")
    includes = [_paths.include_dir(), *map(Path, include_dirs)]
    cmd_flags = [*COMMON, *(MAIN if main else LIBRARY), *flags, *(f"-I{d}" for d in includes)]
    digest = hashlib.sha256(" ".join(cmd_flags).encode())
    headers = sorted(h for d in includes if d.is_dir() for h in d.glob("*.h"))
    for path in [*sources, *libraries, *headers]:
        try:
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
        except OSError as exc:
            raise BuildError(f"{output.name}: cannot read {path}: {exc.strerror}") from None
    return zig_cc(
        [*cmd_flags, *map(str, sources), *map(str, libraries)],
        output,
        digest.hexdigest(),
        force=force,
        what=output.name,
        hint="building modules needs zig: pip install ziglang",
        error=BuildError,
    )


__all__ = ["BuildError", "build_module"]
