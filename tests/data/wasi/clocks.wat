;; Clocks, a sleep and random bytes, each behind an export (tests/test_wasi_virtual_time.py calls them,
;; through the API and through `hwsim wasm run --invoke`).
(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (memory (export "memory") 1)
  ;; clock ID's time now
  (func $now (export "now") (param $id i32) (result i64)
    (drop (call $clock (local.get $id) (i64.const 1) (i32.const 0)))
    (i64.load (i32.const 0)))
  ;; how long N turns of an empty loop take on the monotonic clock
  (func (export "work") (param $n i32) (result i64)
    (local $t i64)
    (local.set $t (call $now (i32.const 1)))
    (loop $l
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $l (local.get $n)))
    (i64.sub (call $now (i32.const 1)) (local.get $t)))
  ;; sleep NS on the monotonic clock (one relative clock subscription); how long it took on that clock
  (func (export "sleep") (param $ns i64) (result i64)
    (local $t i64)
    (local.set $t (call $now (i32.const 1)))
    (i64.store (i32.const 64) (i64.const 7))       ;; userdata
    (i32.store8 (i32.const 72) (i32.const 0))      ;; tag: clock
    (i32.store (i32.const 80) (i32.const 1))       ;; id: monotonic
    (i64.store (i32.const 88) (local.get $ns))     ;; timeout
    (i64.store (i32.const 96) (i64.const 0))       ;; precision
    (i32.store16 (i32.const 104) (i32.const 0))    ;; flags: relative
    (drop (call $poll (i32.const 64) (i32.const 128) (i32.const 1) (i32.const 200)))
    (i64.sub (call $now (i32.const 1)) (local.get $t)))
  ;; eight random bytes
  (func (export "rand") (result i64)
    (drop (call $random (i32.const 16) (i32.const 8)))
    (i64.load (i32.const 16)))
  (func (export "spawn") (result i32) (call $spawn (i32.const 0)))
  (func (export "_start")))
