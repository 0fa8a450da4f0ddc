"""hwsim.compiler.serialize and the Engine's code cache: data only, checked, never unpickled.

Found by review: the cache ``pickle.load``-ed any file with the right name, so whoever could write
the cache directory ran code in hwsim's process.  Now a cache file is a small versioned binary
with a content hash; anything wrong with it (corrupt, truncated, forged, a pickle) is refused and
the module compiled again.
"""

from __future__ import annotations

import hashlib
import pickle
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from property_scale import examples

import hwsim.runtime.api as api
from hwsim.compiler import compile_module, serialize
from hwsim.compiler.serialize import CacheFormatError, decode, encode
from hwsim.runtime.api import Engine, Instance, Module, Store, _wat_to_wasm
from hwsim.wasm import load_module

WAT = """(module
  (import "env" "log" (func $log (param i32)))
  (memory 1) (table 2 funcref) (global $g (mut i32) (i32.const 7)) (elem (i32.const 0) $div $call)
  (type $t (func (param i32 i32) (result i32)))
  (func $div (export "div") (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get 1)))
  (func $call (export "call") (param i32 i32 i32) (result i32)
    (call $log (local.get 0))
    (call_indirect (type $t) (local.get 0) (local.get 1) (local.get 2)))
  (func (export "load") (param i32) (result i32) (i32.load (local.get 0))))"""
WASM = _wat_to_wasm(WAT)


def fields(c) -> tuple:
    return (
        c.code,
        c.func_offsets,
        c.func_sizes,
        c.trap_table,
        c.pc_map,
        c.layout,
        c.num_imported_funcs,
        c.far_calls,
        c.frames,
    )


def reseal(body: bytes) -> bytes:
    """A file around ``body`` with a correct hash: what someone forging a cache file would write."""
    return struct.pack("<8sI32s", serialize.MAGIC, serialize.FORMAT_VERSION, hashlib.sha256(body).digest()) + body


@pytest.fixture(scope="module")
def sample():
    module = load_module(WASM)
    compiled = compile_module(module)
    return module, compiled, encode(compiled)


def test_round_trip(sample):
    module, compiled, data = sample
    assert fields(decode(data, module)) == fields(compiled)
    assert compiled.trap_table and compiled.pc_map  # the sample exercises every table
    assert any(f.homes and f.saved for f in compiled.frames) and any(f.epilogues for f in compiled.frames)
    far = compile_module(module, far_calls=True)
    assert fields(decode(encode(far), module)) == fields(far) and far.far_calls


@pytest.mark.parametrize(
    "change, reason",
    [
        (lambda d: d[:10], "10 bytes, shorter than the 44-byte header"),
        (lambda d: b"\x80\x04" + d[2:], "not a code-cache file (bad magic)"),
        (lambda d: d[:8] + struct.pack("<I", 99) + d[12:], f"format version 99, not {serialize.FORMAT_VERSION}"),
        (lambda d: d[:-1], "content hash mismatch (corrupt or truncated)"),
        (lambda d: d[:-1] + bytes([d[-1] ^ 1]), "content hash mismatch (corrupt or truncated)"),
        (lambda d: reseal(d[44:] + b"\0"), "1 bytes after the code"),
        (lambda d: reseal(d[44:-5]), "truncated: "),
        (lambda d: reseal(struct.pack("<H", 5) + b"old-1" + d[44 + 2 + d[44] :]), "compiled by 'old-1', not "),
    ],
)
def test_bad_files_are_refused_with_the_reason(sample, change, reason):
    module, _, data = sample
    with pytest.raises(CacheFormatError) as info:
        decode(change(data), module)
    assert str(info.value).startswith(reason)


def test_forged_indices_are_refused(sample):
    module, compiled, _ = sample
    other = load_module(_wat_to_wasm('(module (func (export "f")))'))
    with pytest.raises(CacheFormatError, match="3 functions, but the module defines 1"):
        decode(encode(compiled), other)
    cases = [
        (dict(trap_table=[(len(compiled.code), *compiled.trap_table[0][1:])]), "trap table offset .* outside the code"),
        (dict(trap_table=list(reversed(compiled.trap_table))), "trap table offset .* out of order"),
        (dict(pc_map=[(0, 0, 0)]), "pc map names function 0, not one the module defines"),
        (dict(pc_map=[(0, 4, 0)]), "pc map names function 4, not one the module defines"),
        (
            dict(func_sizes=[compiled.func_sizes[0] + 4, *compiled.func_sizes[1:]]),
            "function code at .* overlaps the function before",
        ),
        (dict(code=compiled.code[:-4]), "functions end at .*, past the code at"),
    ]
    for change, reason in cases:
        forged = serialize.CompiledModule(
            **{
                **dict(
                    zip(
                        (
                            "code",
                            "func_offsets",
                            "func_sizes",
                            "trap_table",
                            "pc_map",
                            "layout",
                            "num_imported_funcs",
                            "far_calls",
                        ),
                        fields(compiled),
                    )
                ),
                **change,
            }
        )
        with pytest.raises(CacheFormatError, match=reason):
            decode(encode(forged), module)


FORGERY = settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FORGERY
@given(data=st.data())
def test_forged_and_truncated_bodies_raise_only_cache_format_errors(sample, data):
    module, _, good = sample
    body = bytearray(good[44:])
    for _ in range(data.draw(st.integers(1, 4), label="changes")):
        pos = data.draw(st.integers(0, len(body) - 1), label="position")
        how = data.draw(st.sampled_from(["set", "insert", "delete", "truncate"]), label="how")
        byte = data.draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF]) | st.integers(0, 255), label="byte")
        if how == "set":
            body[pos] = byte
        elif how == "insert":
            body.insert(pos, byte)
        elif how == "delete":
            del body[pos]
        else:
            del body[pos:]
        if not body:
            break
    try:
        compiled = decode(reseal(bytes(body)), module)
    except CacheFormatError:
        return
    end = len(compiled.code)  # a forgery that passes is at least consistent with the module and its code
    assert all(0 <= t[0] < end for t in compiled.trap_table) and all(0 <= p[0] < end for p in compiled.pc_map)


# -- the Engine's cache ----------------------------------------------------------------------------------------


def run_div(engine: Engine) -> int:
    store = Store(engine)
    module = Module(engine, WASM)
    log = api.Func(store, api.FuncType([api.ValType.i32()], []), lambda x: None)
    return Instance(store, module, [log]).exports(store)["div"](store, 84, 2)


def test_a_pickle_in_the_cache_is_never_loaded(tmp_path):
    """A file unpickling to a call of open(marker, "w") sits where the module's cache entry goes."""
    marker = tmp_path / "unpickled"

    class Payload:
        def __reduce__(self):
            return open, (str(marker), "w")

    engine = Engine(cache=True, cache_dir=tmp_path / "cache")
    path = engine.cache_path(WASM)
    path.parent.mkdir()
    path.write_bytes(pickle.dumps(Payload()))
    assert run_div(engine) == 42
    assert not marker.exists()
    assert (engine.cache_hits, engine.cache_misses, engine.cache_rejected) == (0, 1, 1)
    decode(path.read_bytes(), load_module(WASM))  # replaced by a good entry


def test_a_corrupt_entry_is_rebuilt_and_a_good_one_used(tmp_path, monkeypatch):
    first = Engine(cache=True, cache_dir=tmp_path)
    assert run_div(first) == 42 and (first.cache_hits, first.cache_misses) == (0, 1)
    path = first.cache_path(WASM)
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])
    second = Engine(cache=True, cache_dir=tmp_path)
    assert run_div(second) == 42
    assert (second.cache_hits, second.cache_misses, second.cache_rejected) == (0, 1, 1)
    assert path.read_bytes() == good  # rebuilt

    def no_compiler(module, **kw):
        raise AssertionError("compiled although the cache holds the module")

    monkeypatch.setattr(api, "compile_module", no_compiler)
    third = Engine(cache=True, cache_dir=tmp_path)
    assert run_div(third) == 42
    assert (third.cache_hits, third.cache_misses, third.cache_rejected) == (1, 0, 0)


def test_a_cache_entry_for_another_module_is_refused(tmp_path):
    engine = Engine(cache=True, cache_dir=tmp_path)
    other = _wat_to_wasm('(module (func (export "f") (result i32) (i32.const 1)))')
    Module(engine, other)
    engine.cache_path(other).rename(engine.cache_path(WASM))  # the right name, the wrong contents
    assert run_div(engine) == 42 and engine.cache_rejected == 1


# -- a cache hit skips the bodies ---------------------------------------------------------------------------


def _log(_x):
    return None


def _run_div(engine: Engine) -> tuple[Module, int]:
    store = Store(engine)
    module = Module(engine, WASM)
    log = api.Func(store, api.FuncType([api.ValType.i32()], []), _log)
    instance = Instance(store, module, [log])
    return module, instance.exports(store)["div"](store, 7, 2)


def test_a_cache_hit_decodes_no_body_and_runs_the_same(tmp_path):
    engine = Engine(cache_dir=tmp_path)
    first, result = _run_div(engine)
    assert result == 3 and engine.cache_misses == 1
    assert not first._module.bodies and all(f.body == [] for f in first._module.funcs)  # dropped once compiled
    second, result = _run_div(engine)
    assert result == 3 and engine.cache_hits == 1
    assert not second._module.bodies and all(f.body == [] for f in second._module.funcs)
    assert [f.type_index for f in second._module.funcs] == [f.type_index for f in first._module.funcs]
    with pytest.raises(Exception, match="decoded without its function bodies"):
        compile_module(second._module)


def test_a_module_with_simd_helper_code_is_cached(tmp_path):
    """The SIMD helper routines follow the functions in the code: the entry is found, not refused (it used to
    be, as "functions end at ..., the code at ...", so such a module was compiled every time)."""
    wat = """(module (func (export "f") (param i64 i64) (result i64)
      (i64x2.extract_lane 0 (i8x16.swizzle (i64x2.splat (local.get 0)) (i64x2.splat (local.get 1))))))"""
    module = load_module(_wat_to_wasm(wat))
    compiled = compile_module(module)
    assert len(compiled.code) > compiled.func_offsets[-1] + compiled.func_sizes[-1]  # the helpers
    assert fields(decode(encode(compiled), module)) == fields(compiled)
    engine = Engine(cache_dir=tmp_path)
    results = []
    for _ in range(2):
        store = Store(engine)
        f = Instance(store, Module(engine, _wat_to_wasm(wat)), []).exports(store)["f"]
        results.append(f(store, 0x0706050403020100, 0x0001020304050607))
    assert engine.cache_misses == 1 and engine.cache_hits == 1 and engine.cache_rejected == 0
    assert results[0] == results[1] == 0x0001020304050607


def test_a_cache_entry_never_vouches_for_the_rest_of_the_module(tmp_path):
    """The key is the hash of the bytes, but what is not a body is decoded and validated on every load:
    a valid entry forged under another module's key does not let an invalid export through."""
    from hwsim.wasm import InvalidError

    bad = _wat_to_wasm('(module (func $f) (export "f" (func $f)))')
    bad = bad.replace(b"\x07\x05\x01\x01f\x00\x00", b"\x07\x05\x01\x01f\x00\x07")  # export function 7
    engine = Engine(cache_dir=tmp_path)
    Module(engine, _wat_to_wasm('(module (func $f) (export "f" (func $f)))'))
    (entry,) = tmp_path.glob("*.hwcc")
    engine.cache_path(bad).write_bytes(entry.read_bytes())
    with pytest.raises(InvalidError, match="unknown function 7"):
        Module(engine, bad)


def test_the_features_a_module_was_accepted_under_are_part_of_the_key(tmp_path):
    """A module compiled with memory.discard on is cached; the same bytes with the feature off are still
    refused (the bodies, where memory.discard is, are not looked at on a hit)."""
    from hwsim.wasm import Features, UnsupportedFeatureError

    wasm = _wat_to_wasm(
        '(module (memory 1) (func (export "d") (memory.discard (i32.const 0) (i32.const 0))))',
    )
    engine = Engine(cache_dir=tmp_path)
    Module(engine, wasm, features=Features(memory_discard=True))
    Module(engine, wasm, features=Features(memory_discard=True))
    assert engine.cache_hits == 1
    with pytest.raises(UnsupportedFeatureError):
        Module(engine, wasm)


def test_frames_are_read_when_a_debugger_asks_and_forged_ones_are_dropped(sample):
    """A cached load leaves the frames (GDB's view of each function) as bytes; the first look decodes
    them.  Frames that do not fit their functions, in a file with a valid hash (forged), become
    NO_FRAME each, with the reason: the debugger shows no variables, nothing else changes."""
    from hwsim.compiler.frames import NO_FRAME, FrameTable

    module, compiled, data = sample
    loaded = decode(data, module)
    assert isinstance(loaded.frames, FrameTable) and loaded.frames._frames is None  # not decoded yet
    assert len(loaded.frames) == len(compiled.frames) and loaded.frames._frames is None
    assert list(loaded.frames) == list(compiled.frames) and loaded.frames[0] == compiled.frames[0]
    assert loaded.frames.problem is None
    big = max(compiled.func_sizes) + 4
    forged = FrameTable(b"".join(f.to_bytes() for f in compiled.frames), len(compiled.frames), [1] * 3)
    assert list(forged) == [NO_FRAME] * len(compiled.frames)
    assert forged.problem == "a frame's offsets or registers do not fit its function"
    cut = FrameTable(b"".join(f.to_bytes() for f in compiled.frames)[:-3], len(compiled.frames), [big] * 3)
    assert list(cut) == [NO_FRAME] * len(compiled.frames) and "runs past the end" in cut.problem
