"""The compiler's output, byte for byte: code, trap table, pc map and frames of a fixed set of modules.

The digests in ``tests/data/compiler_code_digests.json`` were computed by the compiler of the version
named there.  A change that is meant to leave the generated code alone (a faster code generator, say)
keeps them; one that changes the code bumps ``COMPILER_VERSION`` and rewrites them with::

    HWSIM_UPDATE_CODE_DIGESTS=1 python -m pytest tests/test_compiler_code_identity.py
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from hwsim.compiler import COMPILER_VERSION, CompiledModule, compile_module
from hwsim.wasm import decode_module, validate

DATA = Path(__file__).parent / "data"
DIGESTS = DATA / "compiler_code_digests.json"
SMITH_SEEDS = range(40)  # wasm-smith modules (hwsim.fuzz.generate), plain and with SIMD
SIMD_SEEDS = range(2_000_000, 2_000_012)
GC_SEEDS = range(3_000_000, 3_000_012)  # GC: inline allocation and casts (no canonical id in the code)


def code_digest(compiled: CompiledModule) -> str:
    """SHA-256 of everything the compiler decides: code, layout, trap table, pc map and frames."""
    h = hashlib.sha256(compiled.code)
    h.update(repr((compiled.func_offsets, compiled.func_sizes, compiled.far_calls)).encode())
    h.update(repr([(off, code.name, func, wasm) for off, code, func, wasm in compiled.trap_table]).encode())
    h.update(compiled.pc_map.to_bytes())
    for frame in compiled.frames:
        h.update(frame.to_bytes())
    return h.hexdigest()


def module_digests(wasm: bytes) -> dict[str, str]:
    """``{"plain": ..., "metered": ...}``: the module compiled without and with fuel metering."""
    module = decode_module(wasm)
    validate(module)
    return {
        "plain": code_digest(compile_module(module)),
        "metered": code_digest(compile_module(module, metering=True)),
    }


def corpus() -> dict[str, bytes]:
    """The modules, by name: the fuzz regressions in tests/data/fuzz and wasm-smith's seeds (plain, SIMD, GC)."""
    from hwsim.fuzz import generate
    from hwsim.fuzz.smith import GC_FLAGS, SIMD_FLAGS

    modules = {f"data/fuzz/{p.name}": p.read_bytes() for p in sorted((DATA / "fuzz").glob("*.wasm"))}
    for seed in SMITH_SEEDS:
        wasm = generate(seed)
        if wasm is not None:
            modules[f"smith/{seed}"] = wasm
    for seed in SIMD_SEEDS:
        wasm = generate(seed, overrides=SIMD_FLAGS)
        if wasm is not None:
            modules[f"smith-simd/{seed}"] = wasm
    for seed in GC_SEEDS:
        wasm = generate(seed, overrides=GC_FLAGS)
        if wasm is not None:
            modules[f"smith-gc/{seed}"] = wasm
    return modules


def test_generated_code_is_unchanged():
    pytest.importorskip("hwsim.fuzz")
    from hwsim.fuzz.smith import FuzzError, wasm_tools

    try:
        wasm_tools()
    except FuzzError:
        pytest.skip("wasm-tools is not installed")
    got = {}
    for name, wasm in corpus().items():
        try:
            got[name] = module_digests(wasm)
        except Exception as exc:  # a module the front end or compiler rejects: its message is the digest
            got[name] = {"error": f"{type(exc).__name__}: {exc}"}
    if os.environ.get("HWSIM_UPDATE_CODE_DIGESTS"):
        DIGESTS.write_text(json.dumps({"compiler": COMPILER_VERSION, "modules": got}, indent=1) + "\n")
    expected = json.loads(DIGESTS.read_text())
    if expected["compiler"] != COMPILER_VERSION:
        pytest.fail(f"digests are of {expected['compiler']}; rewrite them (HWSIM_UPDATE_CODE_DIGESTS=1)")
    changed = sorted(name for name in expected["modules"] if got.get(name) != expected["modules"][name])
    assert changed == [], f"generated code changed without a COMPILER_VERSION bump: {changed}"
    assert sorted(got) == sorted(expected["modules"])
