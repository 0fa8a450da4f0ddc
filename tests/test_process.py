"""hwsim.process: position-independent modules in one memory 0, the page allocator and its
hwsim:process functions, and every loader error.

The demo (examples/process: main.wasm needs libstats.so, which needs libvec.so) is built with
zig cc once and cached in examples/process/build/; the error paths use small WAT modules.
"""

from __future__ import annotations

import errno
import shutil
import subprocess
from pathlib import Path

import pytest

from hwsim import Trap, TrapCode
from hwsim.process import (
    PROT_READ,
    PROT_WRITE,
    BuildError,
    DuplicateSymbolError,
    LibraryNotFoundError,
    LoadError,
    MemoryRequestError,
    OutOfMemoryError,
    Process,
    UndefinedSymbolError,
    build_module,
)
from hwsim.runtime import api

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "process"
PAGE = 4096
RW = PROT_READ | PROT_WRITE

pytestmark = pytest.mark.skipif(shutil.which("wasm-tools") is None, reason="needs wasm-tools")


@pytest.fixture(scope="module")
def demo_dir() -> Path:
    out = DEMO / "build"
    try:
        vec = build_module([DEMO / "libvec.c"], out / "libvec.so")
        stats = build_module([DEMO / "libstats.c"], out / "libstats.so", libraries=[vec])
        build_module([DEMO / "main.c"], out / "main.wasm", main=True, libraries=[stats, vec])
    except BuildError as exc:
        if "needs zig" in str(exc):
            pytest.skip(str(exc))
        raise
    return out


@pytest.fixture
def demo(demo_dir) -> Process:
    proc = Process(search_path=[demo_dir])
    proc.load(demo_dir / "main.wasm")
    return proc


def wasm(text: str) -> bytes:
    out = subprocess.run(["wasm-tools", "parse", "-", "-o", "/dev/stdout"], input=text.encode(), capture_output=True)
    assert out.returncode == 0, out.stderr.decode()
    return out.stdout


def pic(body: str = "", *, dylink: str = "(mem-info (memory 16 2))") -> str:
    """A position-independent module in WAT: env.memory, its __memory_base, and ``body``."""
    return f"""(module (@dylink.0 {dylink})
      (import "env" "memory" (memory 1))
      (import "env" "__memory_base" (global $mb i32))
      {body})"""


SYSCALLS = pic("""
  (import "hwsim:process" "mmap" (func $mmap (param i32 i32) (result i32)))
  (import "hwsim:process" "munmap" (func $munmap (param i32 i32) (result i32)))
  (import "hwsim:process" "mprotect" (func $mprotect (param i32 i32 i32) (result i32)))
  (func (export "sys_mmap") (param i32 i32) (result i32) (call $mmap (local.get 0) (local.get 1)))
  (func $sys_munmap (export "sys_munmap") (param i32 i32) (result i32) (call $munmap (local.get 0) (local.get 1)))
  (func (export "sys_mprotect") (param i32 i32 i32) (result i32)
    (call $mprotect (local.get 0) (local.get 1) (local.get 2)))
  (func (export "load") (param i32) (result i32) (i32.load (local.get 0)))
  (func (export "store") (param i32 i32) (i32.store (local.get 0) (local.get 1)))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (global (export "sys_data") i32 (i32.const 0))
  (data (global.get $mb) "\\2a")""")


def syscalls(**options) -> Process:
    proc = Process(**options)
    proc.load("sys.so", wasm=wasm(SYSCALLS))
    return proc


# -- the demo: three modules built with zig --------------------------------------------------------------


def test_modules_load_at_allocator_chosen_addresses(demo):
    mods = demo.modules
    assert list(mods) == ["libvec.so", "libstats.so", "main.wasm"]  # dependencies first
    assert mods["main.wasm"].needed == ["libstats.so", "libvec.so"] and mods["libstats.so"].needed == ["libvec.so"]
    regions = sorted((m.memory_base, m.memory_base + m.memory_size) for m in mods.values())
    assert all(end <= start for (_, end), (start, _) in zip(regions, regions[1:]))  # disjoint
    assert regions[0][0] >= demo.stack_top  # above the null page, the stack guard and the stack
    stats = mods["libstats.so"]
    assert stats.memory_align == 16384 and stats.memory_base % 16384 == 0
    assert demo.call("stats_aligned_address") == demo.symbol("stats_aligned") == stats.memory_base + 0x4000
    assert demo.describe(stats.memory_base + 8) == f"{stats.memory_base + 8:#x} is in the data of libstats.so (+0x8)"
    tables = sorted((m.table_base, m.table_base + m.table_size) for m in mods.values() if m.table_size)
    assert tables[0][0] >= 1 and tables[0][1] <= tables[1][0]  # slot 0 stays null


def test_the_same_modules_work_at_other_addresses(demo, demo_dir):
    moved = Process(search_path=[demo_dir])
    taken = moved.mmap(0x30000)  # the allocator now places every module elsewhere
    moved.load("main.wasm")
    for name, module in moved.modules.items():
        assert module.memory_base != demo.modules[name].memory_base or module.memory_size == 0
    assert moved.modules["libvec.so"].memory_base > taken
    for call, args in [
        ("main_triple_sum", (7,)),
        ("main_sum_of_squares", (7,)),
        ("main_hooked", (2,)),
        ("main_same_pointer", ()),
        ("main_ready", ()),
    ]:
        assert moved.call(call, *args) == demo.call(call, *args)


def test_calls_function_pointers_and_data_cross_modules(demo):
    assert demo.call("main_triple_sum", 10) == 3 * 55  # main's static function called by libvec
    assert demo.call("main_sum_of_squares", 10) == 385  # libstats' static function through libvec
    assert demo.call("stats_sum_of", 10, 1) == -55
    assert demo.call("main_hooked", 5) == 1006  # libstats calls main, which was loaded after it
    calls = demo.symbol("main_hook_calls")
    assert demo.read(calls, 4) == (1).to_bytes(4, "little")
    assert demo.call("main_same_pointer") == 1  # &vec_push is one table slot in every module
    assert demo.call("stats_push_pointer") == demo.function_pointer("vec_push")


def test_data_relocations_were_applied(demo):
    stats = demo.modules["libstats.so"]

    def word(symbol):
        return int.from_bytes(demo.read(demo.symbol(symbol), 4), "little")

    assert word("stats_live") == demo.symbol("vec_live")  # GOT.mem into libvec
    assert word("stats_push") == demo.function_pointer("vec_push")  # GOT.func into libvec
    ops = demo.read(demo.symbol("stats_ops"), 8)
    assert [int.from_bytes(ops[i : i + 4], "little") for i in (0, 4)] == [stats.table_base, stats.table_base + 1]


def test_constructors_run_after_linking(demo):
    assert demo.call("main_ready") == 1
    scratch = demo.call("vec_scratch")
    assert demo.describe(scratch) == f"{scratch:#x} is in pages mapped by mmap (readwrite)"


@pytest.mark.parametrize(
    "func, where", [("main_peek", "main.c"), ("stats_peek", "libstats.c"), ("vec_peek", "libvec.c")]
)
def test_null_dereference_traps_in_every_module(demo, func, where):
    with pytest.raises(Trap) as info:
        demo.call(func, 0)
    assert info.value.code is TrapCode.MEMORY_ACCESS_DENIED
    assert "page 0x0 (linear address 0x0) is in the no-access region (trap-on-null)" in str(info.value)
    assert where in info.value.source
    assert demo.call(func, demo.symbol("vec_live")) == 0  # the same function on a valid pointer


def test_null_function_pointer_traps(demo):
    h = demo.call("vec_new", 4)
    demo.call("vec_push", h, 1)
    with pytest.raises(Trap) as info:
        demo.call("vec_map", h, 0)
    assert info.value.code is TrapCode.INDIRECT_CALL_TO_NULL


def test_stack_overflow_hits_the_guard_and_the_process_goes_on(demo):
    assert demo.call("main_recurse", 10) == 55
    with pytest.raises(Trap) as info:
        demo.call("main_recurse", 100)  # 1 KiB a level; the stack is 64 KiB
    assert info.value.code is TrapCode.MEMORY_ACCESS_DENIED and "is not mapped" in str(info.value)
    assert "the stack guard" in demo.describe(demo.stack_top - 65 * 1024)
    assert demo.stack_pointer.value(demo.store) == demo.stack_top
    assert demo.call("main_recurse", 10) == 55


def test_guest_munmap_returns_frames_and_freed_pages_trap(demo):
    frames = demo.store.machine.frames
    h = demo.call("vec_new", 16 * 1024)  # 64 KiB: 16 pages of their own
    data = demo.call("vec_data", h)
    assert data % PAGE == 0 and demo.call("main_live") == 1
    before = frames.committed
    assert demo.call("vec_fill", h, 16 * 1024) == 16 * 1024
    assert frames.committed - before == 16
    assert demo.call("vec_free", h) == 0
    assert frames.committed == before and demo.call("main_live") == 0
    with pytest.raises(Trap) as info:
        demo.call("vec_peek", data)  # use after free
    assert info.value.code is TrapCode.MEMORY_ACCESS_DENIED and f"(linear address {data:#x}) is not mapped" in str(
        info.value
    )
    assert demo.call("vec_data", demo.call("vec_new", 16)) == data  # the pages are reused


def test_guest_mprotect_makes_pages_read_only(demo):
    h = demo.call("vec_new", 4)
    demo.call("vec_push", h, 7)
    assert demo.call("vec_seal", h) == 0
    add = int.from_bytes(demo.read(demo.symbol("stats_fold_fn"), 4), "little")  # libstats' add
    assert demo.call("vec_fold", h, add, 35) == 42  # reads still work
    with pytest.raises(Trap) as info:
        demo.call("vec_push", h, 8)
    assert info.value.code is TrapCode.MEMORY_ACCESS_DENIED and "is read-only" in str(info.value)
    assert demo.call("vec_free", h) == 0  # munmap of read-only pages is fine


def test_loading_again_and_loading_a_library_first(demo_dir):
    proc = Process(search_path=[demo_dir])
    vec = proc.load("libvec.so")
    h = proc.call("vec_new", 4)
    main = proc.load(demo_dir / "main.wasm")
    assert proc.load("main.wasm") is main and proc.modules["libvec.so"] is vec
    assert list(proc.modules) == ["libvec.so", "libstats.so", "main.wasm"]
    assert proc.call("main_live") == 1 and proc.call("vec_free", h) == 0


# -- hwsim:process: mmap / munmap / mprotect ----------------------------------------------------------------


def test_mmap_gives_zeroed_pages_with_the_protection_asked():
    proc = syscalls()
    a = proc.call("sys_mmap", 5000, RW)
    assert a % PAGE == 0 and proc.call("load", a + 4996) == 0
    proc.call("store", a + 8188, 9)  # the length is rounded up to 2 pages
    assert proc.call("load", a + 8188) == 9
    r = proc.call("sys_mmap", PAGE, PROT_READ)
    assert proc.call("load", r) == 0
    with pytest.raises(Trap, match="is read-only"):
        proc.call("store", r, 1)
    n = proc.call("sys_mmap", PAGE, 0)
    with pytest.raises(Trap, match="has no access"):
        proc.call("load", n)
    assert proc.call("sys_mprotect", n, PAGE, RW) == 0
    proc.call("store", n, 3)
    assert proc.call("load", n) == 3
    assert proc.errors == []


def test_munmap_frees_only_what_it_covers_and_allows_unmapped_pages():
    proc = syscalls()
    a = proc.call("sys_mmap", 4 * PAGE, RW)
    for i in range(4):
        proc.call("store", a + i * PAGE, i + 1)
    frames = proc.store.machine.frames.committed
    assert proc.call("sys_munmap", a + PAGE, 2 * PAGE) == 0  # the middle of a mapping
    assert proc.store.machine.frames.committed == frames - 2
    assert [proc.call("load", a), proc.call("load", a + 3 * PAGE)] == [1, 4]
    with pytest.raises(Trap, match="is not mapped"):
        proc.call("load", a + PAGE)
    assert proc.call("sys_munmap", a, 8 * PAGE) == 0  # pages that are not mapped are fine (POSIX)
    assert proc.allocator.describe(a + 3 * PAGE).endswith("is free (not mapped)")


@pytest.mark.parametrize(
    "call, args, err, reason",
    [
        ("sys_mmap", (0, RW), errno.EINVAL, "mmap: length must be positive, not 0"),
        (
            "sys_mmap",
            (-PAGE, RW),
            errno.ENOMEM,
            "mmap of 0xfffff000 bytes: memory 0 would have to grow from 0x30000 to "
            "0x100030000 bytes, past its maximum of 0x100000000",
        ),
        (
            "sys_mmap",
            (PAGE, 4),
            errno.EINVAL,
            "mmap: protection 0x4 asks for PROT_EXEC (4): linear memory never holds code",
        ),
        ("sys_mmap", (PAGE, 9), errno.EINVAL, "mmap: unknown protection bits in 0x9"),
        (
            "sys_munmap",
            (0x100, PAGE),
            errno.EINVAL,
            "munmap: address 0x100 is not a multiple of the 4096-byte page size",
        ),
        (
            "sys_munmap",
            (0, PAGE),
            errno.EINVAL,
            "munmap: page 0x0 (address 0x0) is the protected first page: only pages from mmap can be unmapped",
        ),
        ("sys_munmap", (0x11000, PAGE), errno.EINVAL, "page 0x11 (address 0x11000) belongs to the stack"),
        ("sys_munmap", (0x21000, PAGE), errno.EINVAL, "page 0x21 (address 0x21000) belongs to the data of sys.so"),
        ("sys_munmap", (PAGE, 0), errno.EINVAL, "munmap: length must be positive, not 0"),
        ("sys_mprotect", (0x2F000, PAGE, 1), errno.ENOMEM, "mprotect: page 0x2f (address 0x2f000) is not mapped"),
        ("sys_mprotect", (0x1000, PAGE, 1), errno.ENOMEM, "belongs to the stack guard (never mapped)"),
        ("sys_mprotect", (0, PAGE, 1), errno.ENOMEM, "is the protected first page"),
        ("sys_mprotect", (0x10_0000, PAGE, 1), errno.ENOMEM, "is past the end of memory 0 (0x30000 bytes)"),
        ("sys_mprotect", (0x21000, PAGE, 7), errno.EINVAL, "asks for PROT_EXEC"),
    ],
)
def test_misuse_returns_negative_errno_and_says_why(call, args, err, reason):
    proc = syscalls()
    assert proc.memory.data_len(proc.store) == 0x30000 and proc.modules["sys.so"].memory_base == 0x21000
    assert proc.call(call, *args) == -err
    assert len(proc.errors) == 1 and reason in proc.errors[0]
    assert proc.errors[0].startswith(f"sys.so: {call[4:]}(")


def test_trap_on_error_traps_at_the_call():
    proc = syscalls(trap_on_error=True)
    with pytest.raises(Trap) as info:
        proc.call("sys_munmap", 0, PAGE)
    assert info.value.code is TrapCode.MEMORY_CONTROL
    assert info.value.func_name == "sys_munmap"
    assert "sys.so: munmap(0x0, 0x1000) = -EINVAL: munmap: page 0x0 (address 0x0) is the protected first page" in str(
        info.value
    )


def test_memory_grows_for_mmap_up_to_its_maximum():
    proc = syscalls(max_memory=1 << 20)
    a = proc.call("sys_mmap", 512 << 10, RW)
    assert proc.memory.data_len(proc.store) >= a + (512 << 10)
    assert proc.call("sys_mmap", 512 << 10, RW) == -errno.ENOMEM
    assert "past its maximum of 0x100000" in proc.errors[-1]
    with pytest.raises(OutOfMemoryError, match="past its maximum"):
        proc.mmap(512 << 10)
    assert proc.call("sys_munmap", a, 512 << 10) == 0
    assert proc.call("sys_mmap", 512 << 10, RW) == a  # room again


def test_pages_grown_by_the_guest_are_its_own():
    proc = syscalls()
    size = proc.memory.data_len(proc.store)
    assert proc.call("grow", 1) == size // 65536  # memory.grow behaves as in any wasm module
    proc.call("store", size + 100, 5)
    assert proc.call("load", size + 100) == 5
    assert proc.describe(size) == f"{size:#x} is in pages a module grew with memory.grow"
    assert proc.call("sys_munmap", size, PAGE) == -errno.EINVAL and "was grown by memory.grow" in proc.errors[-1]
    assert proc.call("sys_mprotect", size, PAGE, PROT_READ) == 0  # but they are mapped: mprotect works
    assert proc.call("sys_mmap", PAGE, RW) not in range(size, size + 65536)


def test_host_side_calls_raise():
    proc = Process()
    with pytest.raises(MemoryRequestError, match="EINVAL: munmap: address 0x10 is not a multiple") as info:
        proc.munmap(0x10, PAGE)
    assert info.value.errno == errno.EINVAL
    a = proc.mmap(PAGE)
    proc.write(a, b"abc")
    assert proc.read(a, 3) == b"abc"
    proc.munmap(a, PAGE)
    with pytest.raises(Exception, match="host write refused: page 0x21 .* is not mapped"):
        proc.write(a, b"abc")


# -- loader errors -----------------------------------------------------------------------------------------


def test_a_module_without_dylink_is_refused():
    proc = Process()
    with pytest.raises(
        LoadError,
        match=r"plain.wasm is not a position-independent module: it has no dylink.0 "
        r"section \(build it with zig cc -fPIC -shared",
    ):
        proc.load("plain.wasm", wasm=wasm('(module (import "env" "memory" (memory 1)))'))


@pytest.mark.parametrize(
    "body, message",
    [
        (
            "(module (@dylink.0 (mem-info)) (memory 1))",
            "own.so defines its own memory; a process module imports env.memory",
        ),
        (
            '(import "env" "__heap_base" (global i32))',
            "own.so imports global env.__heap_base, which a process does not",
        ),
        (
            '(import "hwsim:process" "fork" (func))',
            "hwsim:process has no such function (it has: mmap, mprotect, munmap)",
        ),
        (
            '(import "env" "__stack_pointer" (global i32))',
            "imports env.__stack_pointer as a global of type 0x7f; the process gives a mutable i32",
        ),
        (
            '(@custom "hwsim.memory" "")',
            "own.so declares a memory layout (custom section 'hwsim.memory'); in a "
            "process, memory 0's layout is the process's",
        ),
        (
            '(import "env" "table" (table 1 funcref))',
            "own.so imports env.table as a table; the process's table is env.__indirect_function_table",
        ),
        (
            '(module (@custom "dylink.0" "\\01\\05\\00") (import "env" "memory" (memory 1)))',
            "own.so is not a position-independent module: malformed dylink.0 section",
        ),
        (
            '(import "hwsim:process" "mmap" (func (param i32)))',
            "own.so: incompatible import type: import 'hwsim:process' 'mmap' expects",
        ),
    ],
)
def test_unsupported_modules_are_refused(body, message):
    proc = Process()
    text = body if body.startswith("(module") else pic(body)
    with pytest.raises(LoadError, match=message.replace("(", r"\(").replace(")", r"\)")):
        proc.load("own.so", wasm=wasm(text))
    assert proc.modules == {} and proc.allocator.regions.keys() == {0x1000, 0x11000}  # nothing stays


def test_missing_needed_library(tmp_path):
    (tmp_path / "top.so").write_bytes(wasm(pic(dylink='(mem-info) (needed "libnope.so")')))
    proc = Process(search_path=[tmp_path])
    with pytest.raises(LibraryNotFoundError, match=f"top.so needs libnope.so, which is in none of: {tmp_path}"):
        proc.load(tmp_path / "top.so")
    with pytest.raises(
        LibraryNotFoundError,
        match="cannot find other.so, which is in no directory: the process has an empty search path",
    ):
        Process().load("other.so")


def test_needed_libraries_are_found_through_the_runtime_path(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "dep.so").write_bytes(wasm(pic('(func (export "dep_fn") (result i32) (i32.const 7))')))
    (tmp_path / "top.so").write_bytes(
        wasm(
            pic(
                '(import "env" "dep_fn" (func $d (result i32))) (func (export "top_fn") (result i32) (call $d))',
                dylink='(needed "dep.so") (runtime-path "$ORIGIN/lib")',
            )
        )
    )
    proc = Process()
    proc.load(tmp_path / "top.so")
    assert proc.call("top_fn") == 7


def test_undefined_symbols_name_who_needs_what():
    proc = Process()
    text = pic("""(import "env" "nothere" (func (param i32)))
                  (import "GOT.mem" "nodata" (global (mut i32)))
                  (import "GOT.func" "nofunc" (global (mut i32)))""")
    with pytest.raises(UndefinedSymbolError) as info:
        proc.load("needy.so", wasm=wasm(text))
    assert str(info.value) == (
        "undefined symbols: needy.so needs function `nothere`; needy.so needs data address "
        "`nodata`; needy.so needs function address `nofunc`"
    )
    assert info.value.missing == [
        ("needy.so", "nothere", "function"),
        ("needy.so", "nodata", "data address"),
        ("needy.so", "nofunc", "function address"),
    ]
    assert proc.modules == {}


def test_duplicate_strong_definitions_are_refused():
    proc = Process()
    proc.load("a.so", wasm=wasm(pic('(func (export "dup") (result i32) (i32.const 1))')))
    with pytest.raises(DuplicateSymbolError, match="symbol `dup` is defined by both a.so and b.so"):
        proc.load("b.so", wasm=wasm(pic('(func (export "dup") (result i32) (i32.const 2))')))
    assert list(proc.modules) == ["a.so"]
    proc.define_func("env", "host_fn", api.FuncType([], []), lambda: None)
    with pytest.raises(DuplicateSymbolError, match="symbol `host_fn` is defined by both the host and c.so"):
        proc.load("c.so", wasm=wasm(pic('(func (export "host_fn"))')))


def test_a_weak_definition_gives_way_to_a_strong_one(tmp_path):
    # wasm-ld makes a module import the weak definitions it calls itself: that is how the loader knows.
    (tmp_path / "weak.so").write_bytes(
        wasm(
            pic("""
        (import "env" "pick" (func $pick (result i32)))
        (func (export "pick") (result i32) (i32.const 1))
        (func (export "weak_calls") (result i32) (call $pick))""")
        )
    )
    (tmp_path / "strong.so").write_bytes(
        wasm(pic('(func (export "pick") (result i32) (i32.const 2))', dylink='(needed "weak.so")'))
    )
    proc = Process(search_path=[tmp_path])
    proc.load("strong.so")
    assert proc.call("pick") == 2 and proc.call("weak_calls") == 2


def test_mistyped_symbols_are_refused():
    proc = Process()
    proc.load(
        "def.so",
        wasm=wasm(
            pic('(func (export "f") (param i32) (result i32) (local.get 0)) (global (export "d") i32 (i32.const 0))')
        ),
    )
    with pytest.raises(
        LoadError,
        match=r"symbol `f`: use.so imports it as \[i64\] -> \[\], def.so defines it as "
        r"\[i32\] -> \[i32\]",
    ):
        proc.load("use.so", wasm=wasm(pic('(import "env" "f" (func (param i64)))')))
    with pytest.raises(LoadError, match="use.so calls `d`, which def.so defines as data"):
        proc.load("use.so", wasm=wasm(pic('(import "env" "d" (func))')))
    with pytest.raises(
        LoadError,
        match=r"use.so takes the address of `f` \(GOT.mem\), which def.so defines as a "
        r"function",
    ):
        proc.load("use.so", wasm=wasm(pic('(import "GOT.mem" "f" (global (mut i32)))')))


def test_out_of_memory_while_loading_gives_everything_back(tmp_path):
    (tmp_path / "small.so").write_bytes(wasm(pic()))
    (tmp_path / "big.so").write_bytes(wasm(pic(dylink='(mem-info (memory 0x200000 2)) (needed "small.so")')))
    proc = Process(max_memory=1 << 20, search_path=[tmp_path])
    regions = dict(proc.allocator.regions)
    with pytest.raises(
        OutOfMemoryError,
        match=r"cannot load big.so \(0x200000 bytes of data\): .* past its "
        r"maximum of 0x100000",
    ):
        proc.load("big.so")
    assert proc.modules == {} and proc.allocator.regions == regions and proc.symbols == {}
    proc.load("small.so")  # the process is still usable


def test_a_trap_while_instantiating_gives_everything_back(tmp_path):
    (tmp_path / "ok.so").write_bytes(wasm(pic('(func (export "ok_fn"))')))
    (tmp_path / "bad.so").write_bytes(wasm(pic("(func $s unreachable) (start $s)", dylink='(needed "ok.so")')))
    proc = Process(search_path=[tmp_path])
    committed = proc.memory._inner.committed_bytes
    with pytest.raises(LoadError, match="bad.so: instantiation trapped: unreachable"):
        proc.load("bad.so")
    assert proc.modules == {} and proc.symbols == {} and proc.memory._inner.committed_bytes == committed
    proc.load("ok.so")


def test_a_trapping_constructor_is_reported():
    proc = Process()
    with pytest.raises(
        LoadError,
        match=r"ctor.so: __wasm_call_ctors trapped \(ctor.so stays loaded, half "
        r"initialised\): unreachable",
    ):
        proc.load("ctor.so", wasm=wasm(pic('(func (export "__wasm_call_ctors") unreachable)')))


# -- weak imports and late binding -------------------------------------------------------------------------

WEAK_USER = pic(
    """
  (import "env" "opt" (func $opt (result i32)))
  (import "GOT.func" "opt" (global $opt_addr (mut i32)))
  (import "GOT.mem" "opt_data" (global $opt_data (mut i32)))
  (func (export "call_opt") (result i32) (call $opt))
  (func (export "opt_addr") (result i32) (global.get $opt_addr))
  (func (export "opt_data_addr") (result i32) (global.get $opt_data))""",
    dylink="""(mem-info (memory 16 2)) (import-info "env" "opt" binding-weak undefined)
              (import-info "GOT.func" "opt" binding-weak undefined)
              (import-info "GOT.mem" "opt_data" binding-weak undefined)""",
)


def test_weak_undefined_symbols_are_null_until_a_later_load_defines_them():
    proc = Process()
    proc.load("user.so", wasm=wasm(WEAK_USER))
    assert proc.call("opt_addr") == 0 and proc.call("opt_data_addr") == 0  # as in C: &opt == NULL
    with pytest.raises(Trap, match=r"call to undefined weak symbol `opt` \(imported by user.so\)"):
        proc.call("call_opt")
    proc.load(
        "provider.so",
        wasm=wasm(
            pic("""(func (export "opt") (result i32) (i32.const 42))
                                              (global (export "opt_data") i32 (i32.const 4))""")
        ),
    )
    assert proc.call("call_opt") == 42  # bound now
    assert proc.call("opt_addr") == proc.function_pointer("opt") != 0
    assert proc.call("opt_data_addr") == proc.modules["provider.so"].memory_base + 4


def test_a_weak_function_import_is_not_bound_to_data():
    proc = Process()
    proc.load("user.so", wasm=wasm(WEAK_USER))
    proc.load("data.so", wasm=wasm(pic('(global (export "opt") i32 (i32.const 0))')))
    with pytest.raises(Trap, match="call to undefined weak symbol `opt`"):
        proc.call("call_opt")
    assert proc.call("opt_addr") == 0


def test_a_reexported_import_is_not_a_definition():
    proc = Process()
    proc.define_func("env", "host_fn", api.FuncType([], [api.ValType.i32()]), lambda: 5)
    proc.load("re.so", wasm=wasm(pic('(import "env" "host_fn" (func $h (result i32))) (export "host_fn" (func $h))')))
    assert proc.symbols["host_fn"].owner == "the host" and proc.call("host_fn") == 5


def test_host_functions_are_symbols():
    proc = Process()
    seen = []
    proc.define_func("env", "host_log", api.FuncType([api.ValType.i32()], []), seen.append)
    proc.load(
        "h.so",
        wasm=wasm(
            pic("""
        (import "env" "__indirect_function_table" (table 0 funcref))
        (import "env" "host_log" (func $log (param i32)))
        (import "GOT.func" "host_log" (global $log_addr (mut i32)))
        (type $t (func (param i32)))
        (func (export "go") (call $log (i32.const 1)) (call_indirect (type $t) (i32.const 2) (global.get $log_addr)))
    """)
        ),
    )
    proc.call("go")
    assert seen == [1, 2]


# -- the build helper ---------------------------------------------------------------------------------------


def test_build_module_caches_and_reports_compiler_errors(demo_dir, tmp_path):
    out = demo_dir / "libvec.so"
    stamp = out.stat().st_mtime_ns
    assert build_module([DEMO / "libvec.c"], out) == out and out.stat().st_mtime_ns == stamp
    (tmp_path / "bad.c").write_text("int f(void) { return missing; }\n")
    with pytest.raises(BuildError, match="building bad.so failed:\n.*use of undeclared identifier 'missing'"):
        build_module([tmp_path / "bad.c"], tmp_path / "bad.so")
