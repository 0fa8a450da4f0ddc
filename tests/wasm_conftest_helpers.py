"""Shared helpers of the wasm front-end tests: a tiny binary-module builder and the spec test suite's location.

Imported by the tests that need it (this is not a conftest: the project's
``tests/conftest.py`` belongs to other work).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Module builder ----------------------------------------------------------------

I32, I64, F32, F64, FUNCREF, EXTERNREF = 0x7F, 0x7E, 0x7D, 0x7C, 0x70, 0x6F
HEADER = b"\x00asm\x01\x00\x00\x00"


def uleb(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def sleb(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if (n == 0 and not b & 0x40) or (n == -1 and b & 0x40):
            out.append(b)
            return bytes(out)
        out.append(b | 0x80)


def vec(items) -> bytes:
    items = list(items)
    return uleb(len(items)) + b"".join(items)


def name(text: str) -> bytes:
    raw = text.encode()
    return uleb(len(raw)) + raw


def section(sid: int, payload: bytes) -> bytes:
    return bytes([sid]) + uleb(len(payload)) + payload


def functype(params=(), results=()) -> bytes:
    return b"\x60" + vec(bytes([t]) for t in params) + vec(bytes([t]) for t in results)


def type_section(*types: bytes) -> bytes:
    return section(1, vec(types))


def func_section(*type_indices: int) -> bytes:
    return section(3, vec(uleb(i) for i in type_indices))


def code_section(*bodies: bytes) -> bytes:
    return section(10, vec(uleb(len(b)) + b for b in bodies))


def body(code: bytes, locals_=()) -> bytes:
    """A function body: local groups ``[(count, type), ...]`` then the instructions (add the final 0x0b)."""
    return vec(uleb(n) + bytes([t]) for n, t in locals_) + code


def memory_section(*limits: bytes) -> bytes:
    return section(5, vec(limits))


def export_section(*exports: tuple[str, int, int]) -> bytes:
    return section(7, vec(name(n) + bytes([k]) + uleb(i) for n, k, i in exports))


def custom_section(section_name: str, payload: bytes) -> bytes:
    return section(0, name(section_name) + payload)


def module(*sections: bytes) -> bytes:
    return HEADER + b"".join(sections)


def one_func(code: bytes, params=(), results=(), locals_=(), extra=()) -> bytes:
    """A module with one function of the given type and body; ``extra`` sections go between function and code."""
    return module(type_section(functype(params, results)), func_section(0), *extra, code_section(body(code, locals_)))


def oracle_engine_class():
    """The wasmtime-backed test engine (tests/wasmtime_engine.py); skips the test when wasmtime is not installed."""
    pytest.importorskip("wasmtime", reason="wasmtime is not installed (it comes with the test extra)")
    import wasmtime_engine

    return wasmtime_engine.WasmtimeEngine


# The spec test suite -------------------------------------------------------------

FALLBACK_TESTSUITE = Path("/work/shared/wasm-testsuite")


def locate_testsuite() -> Path:
    """The WebAssembly spec test suite: $HWSIM_WASM_TESTSUITE, else <repo>/../shared/wasm-testsuite, else
    /work/shared/wasm-testsuite.  Fails the test (never skips) when it is not there."""
    env = os.environ.get("HWSIM_WASM_TESTSUITE")
    if env:
        if (Path(env) / "scope.txt").is_file():
            return Path(env)
        pytest.fail(f"HWSIM_WASM_TESTSUITE={env} is not the WebAssembly spec test suite (no scope.txt there)")
    candidates = [REPO.parent / "shared" / "wasm-testsuite", FALLBACK_TESTSUITE]
    for c in candidates:
        if (c / "scope.txt").is_file():
            return c
    pytest.fail(
        "WebAssembly spec test suite not found: set HWSIM_WASM_TESTSUITE to a checkout of "
        "https://github.com/WebAssembly/testsuite with scope.txt (looked in: "
        + ", ".join(str(c) for c in candidates)
        + ")"
    )


# Scripts hwsim's conformance covers beyond the suite's scope.txt (which is shared, read-only test data),
# relative to the suite; `hwsim spectest --suite SUITE --scope SUITE/scope.txt --scope` this file runs both.
SCOPE_MORE = REPO / "tests" / "data" / "spectest_scope_more.txt"


def _listed(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def scope_files() -> list[str]:
    """The scripts of the conformance target, relative to the suite: scope.txt, then SCOPE_MORE."""
    return _listed((locate_testsuite() / "scope.txt").read_text()) + _listed(SCOPE_MORE.read_text())
