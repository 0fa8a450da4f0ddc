"""Isolation properties (hypothesis): wasm code never reaches outside its own memories.

A stateful test drives two instances in one Store.  Instance A does loads and
stores at arbitrary addresses with static offsets chosen near the interesting
boundaries (the memory's end, the 4 GiB index range, the 2 GiB guard), for a
32-bit memory (bounds checked by the MMU), a memory64 and a 1-byte-page
memory (bounds checked explicitly), with memory.grow, memory.discard,
memory.map/unmap/protect in between.  A Python model says, for each access,
whether it is in bounds and allowed and what it reads; the test checks the
outcome (value or trap) against it, A's memories against the model, and that
B's memory (holding a secret) never changes.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from property_scale import examples

from hwsim.compiler.traps import TrapCode
from hwsim.runtime import api

PAGE = 4096
OFFSETS = (0, 1, 0xFFF, 0x10000, 0x7FFF_FFF8, 0x8000_0000, 0xFFFF_FFF0)
SIZES = {
    1: ("i32.load8_u", "i32.store8", "i32"),
    2: ("i32.load16_u", "i32.store16", "i32"),
    4: ("i32.load", "i32.store", "i32"),
    8: ("i64.load", "i64.store", "i64"),
}
MEMORIES = {  # name -> (index type, declaration, page size)
    "m32": ("i32", '(memory $m32 (export "m32") 1 8)', 65536),
    "m64": ("i64", '(memory $m64 (export "m64") i64 1 8)', 65536),
    "small": ("i32", '(memory $small (export "small") 5000 20000 (pagesize 1))', 1),
}


def _accessors() -> str:
    out = []
    for mem, (at, _decl, _page) in MEMORIES.items():
        for off in OFFSETS:
            if at == "i32" and off > 0xFFFF_FFFF:
                continue
            for size, (load, store, vt) in SIZES.items():
                if vt == "i64":
                    load, store = "i64.load", "i64.store"
                out.append(
                    f'(func (export "ld_{mem}_{off}_{size}") (param $a {at}) (result {vt}) '
                    f"({load} ${mem} offset={off} (local.get $a)))"
                )
                out.append(
                    f'(func (export "st_{mem}_{off}_{size}") (param $a {at}) (param $v {vt}) '
                    f"({store} ${mem} offset={off} (local.get $a) (local.get $v)))"
                )
        out.append(f'(func (export "grow_{mem}") (param $n {at}) (result {at}) (memory.grow ${mem} (local.get $n)))')
    return "\n".join(out)


MODULE_A = f"""(module
  (import "hwsim:memory" "discard" (func $discard (param i32 i32)))
  (import "hwsim:memory" "protect" (func $protect (param i32 i32 i32)))
  {MEMORIES["m32"][1]} {MEMORIES["m64"][1]} {MEMORIES["small"][1]}
  {_accessors()}
  (func (export "discard") (param i32 i32) (call $discard (local.get 0) (local.get 1)))
  (func (export "protect") (param i32 i32 i32) (call $protect (local.get 0) (local.get 1) (local.get 2))))"""
MODULE_B = """(module (memory (export "secret") 1) (data (i32.const 0) "top secret: B's memory")
  (func (export "peek") (result i32) (i32.load (i32.const 0))))"""


@pytest.fixture(scope="module")
def world():
    engine = api.Engine()
    return engine, api.Module(engine, MODULE_A), api.Module(engine, MODULE_B)


class Isolation(RuleBasedStateMachine):
    world = None  # set by the test

    @initialize()
    def setup(self):
        engine, module_a, module_b = self.world
        self.store = api.Store(engine)
        linker = api.Linker(engine)
        self.b = linker.instantiate(self.store, module_b).exports(self.store)
        self.a = linker.instantiate(self.store, module_a).exports(self.store)
        self.secret = self._b_digest()
        self.model = {name: bytearray(self._size(name)) for name in MEMORIES}
        self.readonly: set[int] = set()  # pages of m32 protected read-only

    def _size(self, mem: str) -> int:
        return self.a[mem].data_len(self.store)

    def _b_digest(self) -> str:
        return hashlib.sha256(bytes(self.b["secret"].read(self.store))).hexdigest()

    def _call(self, name, *args):
        try:
            return self.a[name](self.store, *args), None
        except api.Trap as trap:
            return None, trap.code

    @rule(
        mem=st.sampled_from(sorted(MEMORIES)),
        off=st.sampled_from(OFFSETS),
        size=st.sampled_from(sorted(SIZES)),
        addr=st.one_of(
            st.integers(0, 70000),
            st.integers(0, 0xFFFF_FFFF),
            st.integers(0xFFFF_FF00, 0xFFFF_FFFF),
            st.sampled_from([0, PAGE - 1, 65536 - 1, 65536 * 8 - 8, 0x7FFF_FFFF, 0x8000_0000]),
        ),
        store=st.booleans(),
        value=st.integers(0, (1 << 64) - 1),
    )
    def access(self, mem, off, size, addr, store, value):
        at = MEMORIES[mem][0]
        end = addr + off + size
        model = self.model[mem]
        ok = end <= len(model)
        if (
            ok
            and store
            and mem == "m32"
            and any(p in self.readonly for p in range((addr + off) // PAGE, (end - 1) // PAGE + 1))
        ):
            ok = False
            expected_code = TrapCode.MEMORY_ACCESS_DENIED
        else:
            expected_code = TrapCode.MEMORY_OUT_OF_BOUNDS
        wide = size == 8
        a = addr if at == "i64" else (addr - (1 << 32) if addr >> 31 else addr)
        if store:
            v = value & ((1 << (8 * size)) - 1)
            arg = (v - (1 << 64) if v >> 63 else v) if wide else (v - (1 << 32) if v >> 31 else v)
            result, code = self._call(f"st_{mem}_{off}_{size}", a, arg)
            if ok:
                assert code is None
                model[addr + off : end] = v.to_bytes(size, "little")
        else:
            result, code = self._call(f"ld_{mem}_{off}_{size}", a)
            if ok:
                assert code is None
                want = int.from_bytes(model[addr + off : end], "little")
                assert result & ((1 << (8 * size)) - 1) == want
        if not ok:
            assert code is expected_code, (mem, off, size, addr, store, code)

    @rule(mem=st.sampled_from(sorted(MEMORIES)), pages=st.integers(0, 3))
    def grow(self, mem, pages):
        page = MEMORIES[mem][2]
        delta = pages * (1000 if page == 1 else 1)
        result, code = self._call(f"grow_{mem}", delta)
        assert code is None
        if result != -1 and result != (1 << 64) - 1 and result != 0xFFFF_FFFF:
            self.model[mem].extend(bytes(delta * page))
        assert self._size(mem) == len(self.model[mem])

    @rule(first=st.integers(0, 20), count=st.integers(0, 4))
    def discard(self, first, count):
        start, length = first * PAGE, count * PAGE
        _, code = self._call("discard", start, length)
        if start + length <= len(self.model["m32"]):
            assert code is None
            self.model["m32"][start : start + length] = bytes(length)
        else:
            assert code is TrapCode.MEMORY_OUT_OF_BOUNDS

    @rule(page=st.integers(0, 15), readonly=st.booleans())
    def protect(self, page, readonly):
        _, code = self._call("protect", page * PAGE, PAGE, 1 if readonly else 2)
        assert code is None
        (self.readonly.add if readonly else self.readonly.discard)(page)

    @invariant()
    def other_instance_untouched(self):
        if hasattr(self, "secret"):
            assert self._b_digest() == self.secret

    def teardown(self):
        if hasattr(self, "store"):
            for name, model in self.model.items():
                got = bytes(self.a[name].read(self.store, 0, len(model)))
                assert got == bytes(model), name


def test_wasm_never_reaches_outside_its_own_memories(world):
    Isolation.world = world
    run = Isolation.TestCase
    run.settings = settings(
        max_examples=examples(60), stateful_step_count=80, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    run().runTest()


# -- a driver's device can never DMA outside what the driver mapped ------------------------------------------

DMA_DRIVER = """(module
  (import "hwsim" "dma_map" (func $map (param i32 i32 i32 i32 i32) (result i64)))
  (memory (export "memory") 2)
  (data (i32.const 0) "dma0")
  (func (export "map") (param $cpu i32) (param $size i32) (param $dir i32) (result i64)
    (call $map (i32.const 0) (i32.const 4) (local.get $cpu) (local.get $size) (local.get $dir))))"""

REGS = {"SRC_LO": 0x08, "SRC_HI": 0x0C, "DST_LO": 0x10, "DST_HI": 0x14, "LEN": 0x18, "CMD": 0x1C, "STATUS": 0x20}


@pytest.fixture(scope="module")
def dma_world(tmp_path_factory):
    from hwsim.board import DEFAULT_BOARD
    from hwsim.driver.runner import DriverRun
    from hwsim.runtime.api import _wat_to_wasm
    from hwsim.testing import make_board

    board = tmp_path_factory.mktemp("board") / "small.toml"  # virt with 16 MiB of RAM: every byte is compared
    board.write_text(DEFAULT_BOARD.read_text().replace("size = 0x0800_0000", "size = 0x0100_0000"))
    system, _ = make_board(board)
    run = DriverRun(system, _wat_to_wasm(DMA_DRIVER), log=lambda text: None)
    ex = run.instance.exports(run.store)
    src = ex["map"](run.store, 0x1000, 0x800, 1)  # 2 KiB the device may read
    dst = ex["map"](run.store, 0x10000, 0x1000, 2)  # 4 KiB it may write
    mem = run.memory
    pages = {}
    for linear in (0x1000, 0x10000):
        va = mem.base + linear
        pages[linear] = run.store._store.space.lookup(va).pa
    return system, run, src, dst, pages


@settings(
    max_examples=examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    src_off=st.one_of(st.integers(0, 0x800), st.integers(-0x3000, 0x3000)),
    dst_off=st.one_of(st.integers(0, 0x1000), st.integers(-0x3000, 0x3000)),
    length=st.sampled_from([1, 16, 0x7FF, 0x800, 0x801, 0x1000, 0x1001, 0x2000]),
)
def test_a_device_reaches_only_what_the_driver_mapped(dma_world, src_off, dst_off, length):
    system, run, src, dst, pages = dma_world
    ram = system.machine.ram
    before = bytes(ram.view)
    dev = system.device("dma0")
    s, d = (src + src_off) % (1 << 64), (dst + dst_off) % (1 << 64)
    for reg, value in (
        ("SRC_LO", s & 0xFFFF_FFFF),
        ("SRC_HI", s >> 32),
        ("DST_LO", d & 0xFFFF_FFFF),
        ("DST_HI", d >> 32),
        ("LEN", length),
        ("CMD", 1),
    ):
        dev.mmio_write(REGS[reg], 4, value)
    after = bytes(ram.view)
    dev.mmio_write(REGS["STATUS"], 4, 6)  # clear DONE/ERROR
    # The only bytes that may change: inside the destination mapping (iova dst .. dst+0x1000), which is
    # driver memory at linear 0x10000; plus the IOMMU's own structures (its fault queue, in RAM).
    dst_pa = pages[0x10000] - ram.base
    fq = system.iommu
    if before == after:
        return
    mib = 1 << 20
    changed = [
        i
        for c in range(0, len(before), mib)
        if before[c : c + mib] != after[c : c + mib]
        for i in range(c, c + mib, 4096)
        if before[i : i + 4096] != after[i : i + 4096]
    ]
    allowed = {dst_pa}
    if getattr(fq, "_fq_base", None) is not None:
        allowed.add(fq._fq_base - ram.base & ~0xFFF)
    assert set(changed) <= allowed, [hex(c) for c in changed]
    if dst_pa in changed:  # and inside the page, only the mapped bytes of a copy that was fully allowed
        diff = [i for i in range(4096) if before[dst_pa + i] != after[dst_pa + i]]
        assert 0 <= dst_off and dst_off + length <= 0x1000 and 0 <= src_off and src_off + length <= 0x800
        assert all(dst_off <= i < dst_off + length for i in diff)
        ram.view[dst_pa : dst_pa + 4096] = before[dst_pa : dst_pa + 4096]  # restore for the next example
