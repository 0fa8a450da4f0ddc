"""What memory control costs: map/unmap/protect/discard from wasm, the TLB flushes each causes,
and a far-pointer load against a plain load.

    python bench/memctl.py [--quick]

Every operation is called from compiled wasm through the hwsim:memory and
hwsim:far intrinsics (lowered in place: an ecall to the host's page tables),
in a loop, and timed per call.  "flushes" counts flushes of the CPU's TLB
(Unicorn's) and "refills" the TLB-fill callbacks that followed, per call.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hwsim.runtime import api  # noqa: E402
from hwsim.runtime.memctl import record_bytes  # noqa: E402

PAGE = 4096

WAT = """
(module
  (import "hwsim:memory" "discard" (func $discard (param i32 i32)))
  (import "hwsim:memory" "map" (func $map (param i32 i32 i32) (result i32)))
  (import "hwsim:memory" "unmap" (func $unmap (param i32 i32)))
  (import "hwsim:memory" "protect" (func $protect (param i32 i32 i32)))
  (import "hwsim:far" "load_i32" (func $far_load (param i64) (result i32)))
  (import "hwsim:far" "grant" (func $grant (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 256)
  (func (export "map_unmap") (param $n i32) (param $pages i32)
    (loop $l
      (drop (call $map (i32.const 0x100000) (i32.mul (local.get $pages) (i32.const 4096)) (i32.const 2)))
      (i32.store (i32.const 0x100000) (local.get $n))          ;; touch: the page gets a frame
      (call $unmap (i32.const 0x100000) (i32.mul (local.get $pages) (i32.const 4096)))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
  (func (export "setup")
    (drop (call $map (i32.const 0x200000) (i32.const 4096) (i32.const 2)))
    (i32.store (i32.const 0x200000) (i32.const 1))
    (drop (call $map (i32.const 0x400000) (i32.const 0x10000) (i32.const 2)))
    (drop (call $map (i32.const 0x800000) (i32.const 0x10000) (i32.const 2)))
    (drop (call $map (i32.const 0x10000) (i32.const 0x10000) (i32.const 2))))
  (func (export "protect") (param $n i32)
    (loop $l
      (call $protect (i32.const 0x200000) (i32.const 4096) (i32.and (local.get $n) (i32.const 1)))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
  (func (export "discard") (param $n i32) (param $pages i32) (local $i i32)
    (loop $l
      (local.set $i (i32.const 0))
      (loop $touch                                              ;; give every page a frame again
        (i32.store (i32.add (i32.const 0x400000) (i32.mul (local.get $i) (i32.const 4096))) (i32.const 1))
        (br_if $touch (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $pages))))
      (call $discard (i32.const 0x400000) (i32.mul (local.get $pages) (i32.const 4096)))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
  (func (export "touch_only") (param $n i32) (param $pages i32) (local $i i32)
    (loop $l
      (local.set $i (i32.const 0))
      (loop $touch
        (i32.store (i32.add (i32.const 0x800000) (i32.mul (local.get $i) (i32.const 4096))) (i32.const 1))
        (br_if $touch (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $pages))))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
  (func (export "discard_once") (param i32 i32) (call $discard (local.get 0) (local.get 1)))
  (func (export "noop"))
  (func (export "grant") (result i32) (call $grant (i32.const 0) (i32.const 0x10000) (i32.const 0x10000) (i32.const 1)))
  (func (export "plain") (param $n i32) (result i32) (local $sum i32) (local $p i32)
    (loop $l
      (local.set $sum (i32.add (local.get $sum) (i32.load (i32.add (i32.const 0x10000) (local.get $p)))))
      (local.set $p (i32.and (i32.add (local.get $p) (i32.const 4)) (i32.const 0xfffc)))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (local.get $sum))
  (func (export "far") (param $n i32) (param $sel i64) (result i32) (local $sum i32) (local $p i64)
    (loop $l
      (local.set $sum (i32.add (local.get $sum) (call $far_load (i64.or (local.get $sel) (local.get $p)))))
      (local.set $p (i64.and (i64.add (local.get $p) (i64.const 4)) (i64.const 0xfffc)))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (local.get $sum))
  ANNOTATION)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n = 300 if args.quick else 2000
    engine = api.Engine()
    store = api.Store(engine)
    annotation = '(@custom "hwsim.memory" "' + "".join(f"\\{b:02x}" for b in record_bytes(virtual=True)) + '")'
    instance = api.Linker(engine).instantiate(store, api.Module(engine, WAT.replace("ANNOTATION", annotation)))
    ex = instance.exports(store)
    ex["setup"](store)
    m = store.machine

    def measure(name, *call_args, calls: int, extra: float = 0.0):
        ex[name](store, *call_args)  # warm up (compiles nothing; fills the TLBs)
        flushes, fills = m.cpu_tlb_flushes, m.fills
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            ex[name](store, *call_args)
            best = min(best, time.perf_counter() - t)
        per = (best / calls - extra) * 1e6
        return per, (m.cpu_tlb_flushes - flushes) / (3 * calls), (m.fills - fills) / (3 * calls)

    rows = []
    for pages in (1, 16):
        per, fl, rf = measure("map_unmap", n, pages, calls=n)
        rows.append((f"map + touch + unmap, {pages} page(s)", per, fl, rf))
    per, fl, rf = measure("protect", n, calls=n)
    rows.append(("protect (1 page, rw <-> none)", per, fl, rf))
    mem = ex["memory"]
    for pages in (1, 16):
        # Discard alone: pages made resident by the host (untimed), then one wasm call that discards.
        best = float("inf")
        flushes = m.cpu_tlb_flushes
        for _ in range(n // 10):
            mem.write(store, b"\x01" * (pages * PAGE), 0x400000)
            t = time.perf_counter()
            ex["discard_once"](store, 0x400000, pages * PAGE)
            best = min(best, time.perf_counter() - t)
        t = time.perf_counter()
        ex["noop"](store)
        call = time.perf_counter() - t
        rows.append(
            (f"discard {pages} page(s)", (best - call) * 1e6, (m.cpu_tlb_flushes - flushes) / (n // 10), float("nan"))
        )
        touch, _, _ = measure("touch_only", n // 4, pages, calls=n // 4)
        per, fl, rf = measure("discard", n // 4, pages, calls=n // 4)
        rows.append(("  discard + touch again, per page", (per - touch) / pages, fl / pages, rf / pages))
    print(f"{time.strftime('%Y-%m-%d')}: memory control from wasm (hwsim:memory intrinsics), best of 3")
    print(f"{'operation':44} {'us/call':>9} {'CPU TLB flushes':>16} {'TLB refills':>12}")
    for name, per, fl, rf in rows:
        refills = "" if rf != rf else f"{rf:12.2f}"
        print(f"{name:44} {per:9.1f} {fl:16.2f} {refills:>12}")
    sel = ex["grant"](store)
    loads = 200_000 if args.quick else 2_000_000
    plain = measure("plain", loads, calls=loads)[0] * 1000
    farl = measure("far", loads, sel << 32, calls=loads)[0] * 1000
    print(
        f"\nfar-pointer load (selector check, rights, limit, then the load): {farl:.2f} ns; "
        f"plain i32.load: {plain:.2f} ns; ratio {farl / plain:.2f}  ({loads:,} loads in a loop)"
    )


if __name__ == "__main__":
    main()
