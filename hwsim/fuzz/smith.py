"""Random modules from ``wasm-tools smith``, restricted to what hwsim implements, and ``wasm-tools shrink``.

A seed (an integer) becomes a deterministic string of input bytes, which
``wasm-smith`` reads as a series of choices; the same seed and the same
wasm-tools version give the same module.
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import tempfile
from pathlib import Path

from ..errors import HwsimError
from ..spectest.wast import WastError, find_wasm_tools

# hwsim's scope (docs/wasm-frontend.md): WebAssembly 2.0 core, multi-memory, memory64 (64-bit tables too),
# tail calls, custom page sizes, extended constant expressions, wide arithmetic; SIMD behind an option
# (SIMD_FLAGS).  Everything else is off.
SMITH_FLAGS = (
    "--simd-enabled=false",
    "--relaxed-simd-enabled=false",
    "--exceptions-enabled=false",
    "--gc-enabled=false",
    "--threads-enabled=false",
    "--shared-everything-threads-enabled=false",
    "--custom-descriptors-enabled=false",
    "--compact-imports-enabled=false",
    "--wide-arithmetic-enabled=true",
    "--memory64-enabled=true",
    "--tail-call-enabled=true",
    "--custom-page-sizes-enabled=true",
    "--multi-value-enabled=true",
    "--bulk-memory-enabled=true",
    "--reference-types-enabled=true",
    "--saturating-float-to-int-enabled=true",
    "--sign-extension-ops-enabled=true",
    "--extended-const-enabled=true",
    "--max-memories=3",
    "--max-tables=3",
    # Without these, most inputs give modules with no function at all.
    "--min-types=1",
    "--min-funcs=3",
    "--max-instructions=200",
    # Every memory has a maximum of at most 16 MiB, so final memories can be compared whole; tables stay
    # small for the same reason.  Giant memories and tables are tests/test_hostile_inputs.py's business.
    "--memory-max-size-required=true",
    "--max-memory32-bytes=16777216",
    "--max-memory64-bytes=16777216",
    "--table-max-size-required=true",
    "--max-table-elements=10000",
    # Imports only from IMPORTS_WAT, which both runs provide (--available-imports is added by generate).
    "--max-imports=12",
    "--export-everything=true",
    "--allow-start-export=false",
    # NaN payloads: not canonicalised by smith.  hwsim (RISC-V) gives arithmetic NaN results the canonical
    # pattern, and the oracle is configured to do the same (execute.wasmtime_engine), so NaN bits compare
    # exactly: a wrong payload, or one lost by a move, a load or a store, shows.
    "--canonicalize-nans=false",
    # Loops and recursion decrement a fuel global and trap (unreachable) when it reaches 0, so every call
    # ends, deterministically, the same way in both engines.
    # generate() exports that global as FUEL_EXPORT, and the runs reset it to FUEL before each call.
    "--ensure-termination",
    "--fuel=1000",
)
# SIMD and relaxed SIMD (hwsim fuzz --simd): smith_flags overrides; relaxed results are compared with
# wasmtime's deterministic profile, hwsim's choice (execute.wasmtime_engine).
SIMD_FLAGS = ("--simd-enabled=true", "--relaxed-simd-enabled=true")
# Exception handling (hwsim fuzz --exceptions): tags, throw, throw_ref, try_table, exnref.
EXCEPTIONS_FLAGS = ("--exceptions-enabled=true",)
# GC (hwsim fuzz --gc): struct and array types, i31, casts, typed function references (smith's gc option
# brings them; reference types are on already).  Results of GC's any hierarchy compare by what the host
# observes (execute.py: null, i31 N, or an object).
GC_FLAGS = ("--gc-enabled=true", "--reference-types-enabled=true")
FUEL = 1000
FUEL_EXPORT = "hwsim-fuzz-fuel"

# What generated modules may import; hwsim.fuzz.execute provides the same host functions, global, memory
# and table to both engines.  "many" passes arguments beyond the argument registers.
IMPORTS_WAT = """(module
  (import "env" "i32" (func (param i32) (result i32)))
  (import "env" "i64_i64" (func (param i64 i64) (result i64)))
  (import "env" "f32" (func (param f32) (result f32)))
  (import "env" "f64_i32" (func (param f64 i32) (result f64)))
  (import "env" "void" (func))
  (import "env" "multi" (func (param i32 i64 f32 f64) (result i32 i64 f64)))
  (import "env" "many" (func (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i64 i64 f64) (result i64)))
  (import "env" "g_i32" (global i32))
  (import "env" "g_f64" (global (mut f64)))
  (import "env" "mem" (memory 1 4))
  (import "env" "tab" (table 4 8 funcref))
)"""

# Seed bytes: wasm-smith makes bigger modules from longer inputs.
MIN_SEED_BYTES = 256
MAX_SEED_BYTES = 16384


class FuzzError(HwsimError):
    """A fuzzing tool (wasm-tools, wasmtime) is missing or failed."""


def wasm_tools() -> str:
    try:
        return find_wasm_tools()
    except WastError as exc:
        raise FuzzError(str(exc)) from None


def seed_bytes(seed: int) -> bytes:
    """The input bytes for ``seed``: a size and then the bytes, both drawn from ``random.Random(seed)``."""
    rng = random.Random(seed)
    return rng.randbytes(rng.randint(MIN_SEED_BYTES, MAX_SEED_BYTES))


def smith_flags(seed: int, overrides: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The flags for ``seed``: :data:`SMITH_FLAGS`, and for odd seeds ``--disallow-traps`` (most calls in
    random code trap early; without traps they run on and compute results).  ``overrides`` (``--name=value``)
    replace the flags of the same name, or are added."""
    flags = SMITH_FLAGS + (("--disallow-traps=true",) if seed % 2 else ())
    names = {o.split("=", 1)[0] for o in overrides}
    return tuple(f for f in flags if f.split("=", 1)[0] not in names) + tuple(overrides)


def normalise_overrides(overrides) -> tuple[str, ...]:
    """``overrides`` (``name=value`` or ``--name=value``) as ``--name=value``, checked by smith itself:
    a flag smith does not take, or a bad value, is a FuzzError naming it (not a campaign of empty seeds)."""
    out = tuple(o if o.startswith("--") else f"--{o}" for o in overrides)
    if not out:
        return out
    proc = subprocess.run(
        [wasm_tools(), "smith", *smith_flags(0, out), "--available-imports", _imports_file()],
        input=seed_bytes(0),
        capture_output=True,
        timeout=120,
    )
    if proc.returncode and b"Usage:" in proc.stderr:
        first = proc.stderr.decode(errors="replace").strip().splitlines()[0]
        raise FuzzError(f"wasm-tools smith refuses the flags {' '.join(out)}: {first}")
    return out


def generate(seed: int, *, overrides: tuple[str, ...] = ()) -> bytes | None:
    """The module ``wasm-tools smith`` makes from ``seed``; None when smith cannot make one from it (exit 2).
    ``overrides`` replace flags of :data:`SMITH_FLAGS` (see :func:`normalise_overrides`)."""
    out = subprocess.run(
        [wasm_tools(), "smith", *smith_flags(seed, overrides), "--available-imports", _imports_file()],
        input=seed_bytes(seed),
        capture_output=True,
        timeout=120,
    )
    if out.returncode == 2 and b"Usage:" not in out.stderr:
        return None
    if out.returncode:
        raise FuzzError(f"wasm-tools smith failed for seed {seed}: {out.stderr.decode(errors='replace').strip()}")
    return export_fuel(out.stdout)


def _imports_file() -> str:
    """IMPORTS_WAT as a binary module, in a file named after its hash in the temporary directory."""
    digest = hashlib.sha256(IMPORTS_WAT.encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"hwsim-fuzz-imports-{digest}.wasm"
    if not path.is_file():
        out = subprocess.run([wasm_tools(), "parse", "-"], input=IMPORTS_WAT.encode(), capture_output=True, timeout=60)
        if out.returncode:
            raise FuzzError(f"wasm-tools parse failed on IMPORTS_WAT: {out.stderr.decode(errors='replace')}")
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(out.stdout)
        os.replace(tmp, path)
    return str(path)


def export_fuel(wasm: bytes) -> bytes:
    """``wasm`` with smith's fuel global (``--ensure-termination``) exported as :data:`FUEL_EXPORT`.

    Smith adds the fuel global last: a mutable i32 initialised to :data:`FUEL`.  Exported, it can be
    refilled before each call, so one runaway function does not leave every later call trapping at once.
    The module is returned unchanged when it has no such global or no export section.
    """
    from ..wasm import decode_module
    from ..wasm.reader import read_u32
    from ..wasm.reader import write_uleb as uleb
    from ..wasm.types import I32, ExternKind

    module = decode_module(wasm)
    nimported = sum(1 for i in module.imports if i.kind is ExternKind.GLOBAL)
    if not module.globals:
        return wasm
    fuel = module.globals[-1]
    instrs = [i for i in fuel.init.instrs if i[0] != 0x0B]  # without the final end
    if not (fuel.type.mutable and fuel.type.valtype == I32 and len(instrs) == 1 and instrs[0][:2] == (0x41, FUEL)):
        return wasm
    index = nimported + len(module.globals) - 1
    pos = 8
    while pos < len(wasm):
        section, size_pos = wasm[pos], pos + 1
        size, body = read_u32(wasm, size_pos)
        if section == 7:  # the export section: one more entry
            count, entries = read_u32(wasm, body)
            name = FUEL_EXPORT.encode()
            payload = uleb(count + 1) + wasm[entries : body + size] + uleb(len(name)) + name + b"\x03" + uleb(index)
            return wasm[:pos] + b"\x07" + uleb(len(payload)) + payload + wasm[body + size :]
        pos = body + size
    return wasm


def shrink(wasm: bytes, predicate: str | os.PathLike, *, attempts: int = 1000, timeout: float = 1800) -> bytes:
    """The smallest module ``wasm-tools shrink`` finds for which the ``predicate`` script exits 0."""
    with tempfile.TemporaryDirectory(prefix="hwsim-shrink-") as tmp:
        src = Path(tmp) / "input.wasm"
        dst = Path(tmp) / "shrunk.wasm"
        src.write_bytes(wasm)
        out = subprocess.run(
            [wasm_tools(), "shrink", "--attempts", str(attempts), str(predicate), str(src), "-o", str(dst)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if out.returncode or not dst.is_file():
            raise FuzzError(f"wasm-tools shrink failed: {out.stderr.strip()[-2000:]}")
        return dst.read_bytes()


def to_text(wasm: bytes) -> str:
    """The text format of ``wasm`` (``wasm-tools print``), for reports."""
    out = subprocess.run([wasm_tools(), "print", "-"], input=wasm, capture_output=True, timeout=60)
    if out.returncode:
        raise FuzzError(f"wasm-tools print failed: {out.stderr.decode(errors='replace').strip()}")
    return out.stdout.decode()
