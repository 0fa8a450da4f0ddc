"""A WASI call (fd_write) from metered code, against wasmtime: its iovecs and their bytes are read out of
guest memory by the host (StoreSpace.read_user: one page, a fast path; more, a loop), the count goes to the
cell and back across the call (calls.CallBoundary._ecall).  The bytes written, the result and the fuel
left are wasmtime's, for buffers that end exactly at a page end, cross one, are empty, or lie in pages
the guest never touched."""

from __future__ import annotations

import pytest
import wasmtime

import hwsim

PAGE = 4096

WAT = """(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (func (export "fill") (param $at i32) (param $n i32) (local $i i32)
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (i32.store8 (i32.add (local.get $at) (local.get $i)) (i32.add (i32.const 65) (i32.rem_u (local.get $i) (i32.const 26))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l))))
  (func (export "write") (param $iovs i32) (param $count i32) (result i32)
    (call $fd_write (i32.const 1) (local.get $iovs) (local.get $count) (i32.const 16))
    (i32.add (i32.load (i32.const 16)))))"""

# (offset, length) of each buffer: filled by the guest unless "untouched"
BUFFERS = [
    [(PAGE - 5, 5)],  # ends exactly at a page end
    [(PAGE - 3, 7)],  # across a page boundary
    [(2 * PAGE, 0)],  # empty
    [(3 * PAGE + 100, 50, "untouched")],  # a page the guest never touched: zeros
    [(PAGE - 1, 1), (PAGE, 1), (5 * PAGE - 1, 2)],
    [(100, 3 * PAGE + 17)],  # several pages
    [(PAGE * 7, PAGE)],  # a whole page, from its start to its end
    [(65536 - 8, 8), (65536, 8, "untouched")],  # the last bytes of the first wasm page, then the next
]


def run(engine: str, buffers: list[tuple], tmp_path) -> tuple:
    api = hwsim if engine == "hwsim" else wasmtime
    config = api.Config()
    config.consume_fuel = True
    eng = api.Engine(config)
    store = api.Store(eng)
    out = tmp_path / f"{engine}.out"
    wasi = api.WasiConfig()
    wasi.stdout_file = str(out)
    store.set_wasi(wasi)
    linker = api.Linker(eng)
    linker.define_wasi()
    store.set_fuel(1 << 20)  # (wasmtime runs startup code)
    instance = linker.instantiate(store, api.Module(eng, WAT))
    exports = instance.exports(store)
    memory = exports["memory"]
    iovs = 32
    for i, (offset, length, *untouched) in enumerate(buffers):
        if not untouched:
            exports["fill"](store, offset, length)
        iov = offset.to_bytes(4, "little") + length.to_bytes(4, "little")
        memory.write(store, iov, iovs + 8 * i)
    store.set_fuel(100_000)
    result = exports["write"](store, iovs, len(buffers))
    left = store.get_fuel()
    del instance, exports, memory, linker
    del store
    return result, left, out.read_bytes() if out.exists() else b""


@pytest.mark.parametrize("buffers", BUFFERS)
def test_fd_write_of_buffers_at_page_edges_is_wasmtimes(buffers, tmp_path):
    hw = run("hwsim", buffers, tmp_path)
    wt = run("wasmtime", buffers, tmp_path)
    want = b"".join(
        bytes(length) if untouched else bytes(65 + i % 26 for i in range(length)) for _, length, *untouched in buffers
    )
    assert hw[1] == wt[1]  # the fuel left
    assert hw[2] == want and hw[0] == len(want)  # errno 0, all written
    # wasmtime writes a file only the first non-empty buffer (a short write, as writev may): a prefix
    assert wt[2] == want[: len(wt[2])] and wt[0] == len(wt[2])
    if sum(1 for _, length, *_ in buffers if length) <= 1:
        assert hw == wt
