"""GC stress: allocation-heavy modules (linked lists, binary trees, arrays of structs, arrays of mixed
references, byte arrays of every size) under small Store heap limits, collected when the heap fills or at
every allocation.  Each module checks its own structures in wasm (values, shapes, byte contents) and
returns a count the test knows; the only other outcome allowed is the documented trap
``out of GC heap memory``, after which the Store keeps working.
"""

from __future__ import annotations

import pytest

from hwsim.compiler.traps import TrapCode
from hwsim.runtime.api import Engine, Instance, Module, Store, Trap

STRESS = """(module
  (type $node (struct (field $v i32) (field $next (ref null $node))))
  (type $tree (struct (field $l (ref null $tree)) (field $r (ref null $tree)) (field $v i32)))
  (type $pair (struct (field $a i32) (field $b i64)))
  (type $pairs (array (mut (ref null $pair))))
  (type $refs (array (mut anyref)))
  (type $bytes (array (mut i8)))
  (global $keep (mut (ref null $tree)) (ref.null none))

  ;; n nodes (v = 0 .. n-1) with garbage byte arrays of 0 .. 199 bytes between them; the walk checks
  ;; every value in order: the node count, or -1
  (func (export "list") (param $n i32) (result i32)
    (local $head (ref null $node)) (local $i i32) (local $count i32)
    (block $built (loop $build
      (br_if $built (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $head (struct.new $node (local.get $i) (local.get $head)))
      (drop (array.new $bytes (i32.const 0x55) (i32.rem_u (local.get $i) (i32.const 200))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $build)))
    (loop $walk
      (if (ref.is_null (local.get $head)) (then (return (local.get $count))))
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (if (i32.ne (struct.get $node $v (local.get $head)) (local.get $i)) (then (return (i32.const -1))))
      (local.set $count (i32.add (local.get $count) (i32.const 1)))
      (local.set $head (struct.get $node $next (local.get $head)))
      (br $walk))
    (unreachable))

  ;; a complete tree of depth d whose node v has children 2v and 2v+1
  (func $make (param $d i32) (param $v i32) (result (ref $tree))
    (if (result (ref $tree)) (i32.eqz (local.get $d))
      (then (struct.new $tree (ref.null none) (ref.null none) (local.get $v)))
      (else (struct.new $tree
        (call $make (i32.sub (local.get $d) (i32.const 1)) (i32.shl (local.get $v) (i32.const 1)))
        (call $make (i32.sub (local.get $d) (i32.const 1)) (i32.or (i32.shl (local.get $v) (i32.const 1)) (i32.const 1)))
        (local.get $v)))))
  ;; its node count when every value is right (a wrong one makes the count hugely negative)
  (func $check (param $t (ref null $tree)) (param $v i32) (result i32)
    (if (ref.is_null (local.get $t)) (then (return (i32.const 0))))
    (if (i32.ne (struct.get $tree $v (local.get $t)) (local.get $v)) (then (return (i32.const -1000000))))
    (i32.add (i32.const 1) (i32.add
      (call $check (struct.get $tree $l (local.get $t)) (i32.shl (local.get $v) (i32.const 1)))
      (call $check (struct.get $tree $r (local.get $t)) (i32.or (i32.shl (local.get $v) (i32.const 1)) (i32.const 1))))))
  ;; a long-lived tree (in a global, or in a local: a root on the stack) while short-lived ones churn
  (func (export "trees") (param $long i32) (param $short i32) (param $rounds i32) (param $in_local i32) (result i32)
    (local $ok i32) (local $kept (ref null $tree))
    (if (local.get $in_local)
      (then (local.set $kept (call $make (local.get $long) (i32.const 1))))
      (else (global.set $keep (call $make (local.get $long) (i32.const 1)))))
    (loop $r
      (local.set $ok (i32.add (local.get $ok) (call $check (call $make (local.get $short) (i32.const 1)) (i32.const 1))))
      (br_if $r (local.tee $rounds (i32.sub (local.get $rounds) (i32.const 1)))))
    (global.set $keep (if (result (ref null $tree)) (local.get $in_local)
      (then (local.get $kept)) (else (global.get $keep))))
    (i32.add (local.get $ok) (call $check (global.get $keep) (i32.const 1))))

  ;; an array of n pairs, half replaced each round (the old halves become garbage); afterwards the number
  ;; of pairs with b = a * a, and the sum of the a's
  (func (export "pairs") (param $n i32) (param $rounds i32) (result i32 i64)
    (local $arr (ref $pairs)) (local $i i32) (local $a i32) (local $good i32) (local $sum i64)
    (local.set $arr (array.new_default $pairs (local.get $n)))
    (loop $r
      (local.set $i (i32.const 0))
      (block $filled (loop $fill
        (br_if $filled (i32.ge_u (local.get $i) (local.get $n)))
        (if (i32.eq (i32.and (local.get $i) (i32.const 1)) (i32.and (local.get $rounds) (i32.const 1)))
          (then
            (local.set $a (i32.add (local.get $i) (local.get $rounds)))
            (array.set $pairs (local.get $arr) (local.get $i) (struct.new $pair (local.get $a)
              (i64.mul (i64.extend_i32_u (local.get $a)) (i64.extend_i32_u (local.get $a)))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $fill)))
      (br_if $r (local.tee $rounds (i32.sub (local.get $rounds) (i32.const 1)))))
    (local.set $i (i32.const 0))
    (block $checked (loop $each
      (br_if $checked (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $a (struct.get $pair $a (array.get $pairs (local.get $arr) (local.get $i))))
      (if (i64.eq (struct.get $pair $b (array.get $pairs (local.get $arr) (local.get $i)))
                  (i64.mul (i64.extend_i32_u (local.get $a)) (i64.extend_i32_u (local.get $a))))
        (then (local.set $good (i32.add (local.get $good) (i32.const 1)))))
      (local.set $sum (i64.add (local.get $sum) (i64.extend_i32_u (local.get $a))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $each)))
    (local.get $good) (local.get $sum))

  ;; element i of an array of anyref: i31 i, a pair (i, i*i), or i % 50 bytes of value i & 0x7f
  (func $element (param $i i32) (result anyref)
    (if (result anyref) (i32.eqz (i32.rem_u (local.get $i) (i32.const 3)))
      (then (ref.i31 (local.get $i)))
      (else (if (result anyref) (i32.eq (i32.rem_u (local.get $i) (i32.const 3)) (i32.const 1))
        (then (struct.new $pair (local.get $i) (i64.mul (i64.extend_i32_u (local.get $i)) (i64.extend_i32_u (local.get $i)))))
        (else (array.new $bytes (i32.and (local.get $i) (i32.const 0x7f)) (i32.rem_u (local.get $i) (i32.const 50))))))))
  ;; is element i what $element made?
  (func $valid (param $x anyref) (param $i i32) (result i32)
    (local $b (ref $bytes)) (local $j i32)
    (if (i32.eqz (i32.rem_u (local.get $i) (i32.const 3)))
      (then (return (i32.and (ref.test (ref i31) (local.get $x))
        (i32.eq (i31.get_u (ref.cast (ref i31) (local.get $x))) (local.get $i))))))
    (if (i32.eq (i32.rem_u (local.get $i) (i32.const 3)) (i32.const 1))
      (then
        (if (i32.eqz (ref.test (ref $pair) (local.get $x))) (then (return (i32.const 0))))
        (return (i32.and
          (i32.eq (struct.get $pair $a (ref.cast (ref $pair) (local.get $x))) (local.get $i))
          (i64.eq (struct.get $pair $b (ref.cast (ref $pair) (local.get $x)))
                  (i64.mul (i64.extend_i32_u (local.get $i)) (i64.extend_i32_u (local.get $i))))))))
    (if (i32.eqz (ref.test (ref $bytes) (local.get $x))) (then (return (i32.const 0))))
    (local.set $b (ref.cast (ref $bytes) (local.get $x)))
    (if (i32.ne (array.len (local.get $b)) (i32.rem_u (local.get $i) (i32.const 50))) (then (return (i32.const 0))))
    (block $done (loop $bytes
      (br_if $done (i32.ge_u (local.get $j) (array.len (local.get $b))))
      (if (i32.ne (array.get_u $bytes (local.get $b) (local.get $j)) (i32.and (local.get $i) (i32.const 0x7f)))
        (then (return (i32.const 0))))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br $bytes)))
    (i32.const 1))
  ;; the array built afresh each round (the previous one garbage); the number of valid elements
  (func (export "refs") (param $n i32) (param $rounds i32) (result i32)
    (local $arr (ref null $refs)) (local $i i32) (local $good i32)
    (loop $r
      (local.set $arr (array.new_default $refs (local.get $n)))
      (local.set $i (i32.const 0))
      (block $filled (loop $fill
        (br_if $filled (i32.ge_u (local.get $i) (local.get $n)))
        (array.set $refs (local.get $arr) (local.get $i) (call $element (local.get $i)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $fill)))
      (br_if $r (local.tee $rounds (i32.sub (local.get $rounds) (i32.const 1)))))
    (local.set $i (i32.const 0))
    (block $checked (loop $each
      (br_if $checked (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $good (i32.add (local.get $good) (call $valid (array.get $refs (local.get $arr) (local.get $i)) (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $each)))
    (local.get $good))
)"""


def stress_instance(limit: int, *, stress: bool):
    store = Store(Engine(cache=False))
    heap = store._store.gc_heap
    heap.limit = limit
    heap.stress = stress
    exports = dict(Instance(store, Module(store.engine, STRESS), []).exports(store).items())
    return store, heap, exports


def pairs_expected(n: int, rounds: int) -> list:
    # the last round that set element i is 1 for odd i, 2 for even i (rounds count down to 1)
    return [n, sum(i + (1 if i & 1 else 2) for i in range(n))]


def tree_nodes(depth: int) -> int:
    return (1 << (depth + 1)) - 1


# (name, arguments, the right result, bytes the live objects need at most: below this the trap is allowed)
WORKLOADS = [
    ("list", (600,), 600, 600 * 32 + 256),
    ("trees", (8, 5, 12, 0), 12 * tree_nodes(5) + tree_nodes(8), (tree_nodes(8) + tree_nodes(5)) * 32),
    ("trees", (8, 5, 12, 1), 12 * tree_nodes(5) + tree_nodes(8), (tree_nodes(8) + tree_nodes(5)) * 32),
    ("pairs", (300, 6), pairs_expected(300, 6), 300 * 8 + 16 + 300 * 32 * 2),
    ("refs", (240, 4), 240, 2 * (240 * 8 + 16 + 80 * 32 + 80 * 64)),
]


@pytest.mark.parametrize("stress", [False, True], ids=["when-full", "every-allocation"])
@pytest.mark.parametrize("limit", [4 << 10, 24 << 10, 96 << 10, 256 << 10])
@pytest.mark.parametrize("name, args, expected, needs", WORKLOADS, ids=lambda w: str(w)[:8])
def test_the_right_result_or_the_out_of_memory_trap(name, args, expected, needs, limit, stress):
    store, heap, e = stress_instance(limit, stress=stress)
    try:
        result = e[name](store, *args)
    except Trap as trap:
        assert trap.code is TrapCode.GC_HEAP_EXHAUSTED, trap
        assert limit < needs, f"{name}{args} ran out of a {limit}-byte heap, needing at most {needs}"
        assert heap.used <= limit
        assert e["list"](store, 20) == 20  # the Store still works after the trap
        return
    assert result == expected
    assert heap.used <= limit
    if stress:
        assert heap.collections > 0
    if limit < needs // 2:
        pytest.fail(f"{name}{args} fit a {limit}-byte heap: the workload no longer needs a collection")


def test_the_heap_is_collected_many_times_and_stays_within_its_limit():
    store, heap, e = stress_instance(24 << 10, stress=False)
    assert e["trees"](store, 6, 6, 200, 1) == 201 * tree_nodes(6)  # 25,400 nodes through 24 KiB
    assert heap.collections >= 20 and heap.freed >= 20_000
    assert heap.used <= 24 << 10


def test_objects_of_every_size_reuse_the_heap_without_corrupting_live_ones():
    """Byte arrays of 0 to 49 bytes freed and reallocated many times (each size its own free list): the
    live array's bytes stay intact, and the Store's data region stops growing once the sizes repeat."""
    store, heap, e = stress_instance(32 << 10, stress=False)
    base = store._store.data_next
    for _ in range(8):
        assert e["refs"](store, 150, 3) == 150
    grown, collections = store._store.data_next, heap.collections
    for _ in range(8):
        assert e["refs"](store, 150, 3) == 150
    assert heap.collections > collections
    assert store._store.data_next == grown
    assert grown - base <= 2 * (32 << 10)


@pytest.mark.parametrize("limit", [0, 16, 31])
def test_a_heap_too_small_for_one_object_traps_at_once(limit):
    store, heap, e = stress_instance(limit, stress=False)
    with pytest.raises(Trap) as info:
        e["list"](store, 1)
    assert info.value.code is TrapCode.GC_HEAP_EXHAUSTED
    assert heap.used == 0


GROW = """(module (type $b (array (mut i8)))
  (func (export "grow") (param $n i32) (param $step i32) (local $i i32)
    (loop $l (drop (array.new_default $b (i32.mul (local.get $i) (local.get $step))))
      (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n))))))"""


@pytest.mark.parametrize("n, step", [(2000, 16), (5000, 1), (16000, 16)])
def test_garbage_of_ever_new_sizes_stays_within_the_limit(n, step):
    """Attack: garbage arrays each larger than the last, so no freed object is ever of the size wanted.
    Free blocks are split and merged, so the memory objects take stays within twice the 256 KiB limit (it took
    the whole 1 GiB of RAM, then a host error, when only same-size blocks were reused); an array too large
    for any free run traps out of GC heap memory."""
    store = Store(Engine(cache=False))
    heap = store._store.gc_heap
    heap.limit = 256 << 10
    grow = Instance(store, Module(store.engine, GROW), []).exports(store)["grow"]
    base = store._store.data_next
    try:
        grow(store, n, step)
    except Trap as trap:
        assert trap.code is TrapCode.GC_HEAP_EXHAUSTED
        assert n * step > 64 << 10  # only arrays of more than a quarter of the heap may find no run
    assert heap.footprint <= 2 * heap.limit
    assert store._store.data_next - base <= 2 * heap.limit + (64 << 10)  # (+ the tail of the last chunk)
