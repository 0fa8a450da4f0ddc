"""Trap codes: one code per reason a WebAssembly computation can stop, each with one fixed message.

Messages use the specification's wording (the spec tests' ``assert_trap``
texts), as Wasmtime's trap enum does.
"""

from __future__ import annotations

import enum


class TrapCode(enum.Enum):
    UNREACHABLE = "unreachable"
    MEMORY_OUT_OF_BOUNDS = "out of bounds memory access"
    TABLE_OUT_OF_BOUNDS = "out of bounds table access"
    UNDEFINED_ELEMENT = "undefined element"  # call_indirect index past the table's end
    INDIRECT_CALL_TO_NULL = "uninitialized element"  # call_indirect to a null entry
    BAD_SIGNATURE = "indirect call type mismatch"
    INTEGER_DIVIDE_BY_ZERO = "integer divide by zero"
    INTEGER_OVERFLOW = "integer overflow"
    BAD_CONVERSION_TO_INTEGER = "invalid conversion to integer"
    STACK_OVERFLOW = "call stack exhausted"
    INTERRUPTED = "interrupted"
    NULL_REFERENCE = "null reference"
    MEMORY_ACCESS_DENIED = "memory access denied by page protection"  # memory control: a protected page
    MEMORY_CONTROL = "invalid memory-control operation"  # memory.map of a mapped page, a bad protection...
    SEGMENT_FAULT = "segment fault"  # a far pointer outside its segment or without the right
    HOST_INTERFACE = "host interface misuse"  # a sandboxed driver called the hwsim host interface wrongly
    OUT_OF_FUEL = "all fuel consumed by WebAssembly"  # a checkpoint found the fuel count used up (wasmtime's text)
    HOST = "trap raised by host code"  # Trap("message") from a host function (its own message is shown)
    # threads proposal
    HEAP_MISALIGNED = "unaligned atomic"  # an atomic access whose effective address is not naturally aligned
    ATOMIC_WAIT_NON_SHARED_MEMORY = "expected shared memory"  # memory.atomic.wait on an unshared memory
    # exception handling
    UNCAUGHT_EXCEPTION = "uncaught exception"  # an exception no try_table caught reached the host
    NULL_EXCEPTION_REFERENCE = "null exception reference"  # throw_ref of a null exnref
    DEADLOCK = "deadlock: memory.atomic.wait with no timeout, and no other thread can notify it"
    # typed function references
    NULL_FUNCTION_REFERENCE = "null function reference"  # call_ref / return_call_ref of null
    # GC
    CAST_FAILURE = "cast failure"  # ref.cast of a reference not of the type
    NULL_I31_REFERENCE = "null i31 reference"  # i31.get_s / i31.get_u of null
    NULL_STRUCTURE_REFERENCE = "null structure reference"  # struct.get / struct.set of null
    NULL_ARRAY_REFERENCE = "null array reference"  # array.get / array.set / array.len of null
    ARRAY_OUT_OF_BOUNDS = "out of bounds array access"
    GC_HEAP_EXHAUSTED = "out of GC heap memory"  # an allocation past the Store's gc_heap_bytes limit
    # wasmtime-py's names for two of them (aliases: the same members)
    INTEGER_DIVISION_BY_ZERO = "integer divide by zero"
    INTERRUPT = "interrupted"

    @property
    def message(self) -> str:
        return self.value

    @property
    def wasmtime_text(self) -> str:
        """Wasmtime's description of the trap (``str(trap)`` shows it after ``wasm trap:``)."""
        return _WASMTIME_TEXT.get(self, self.value)


# Where Wasmtime words a trap differently (crates/environ/src/trap_encoding.rs); the rest read the same
# or are hwsim's own.
_WASMTIME_TEXT = {
    TrapCode.UNREACHABLE: "wasm `unreachable` instruction executed",
    TrapCode.TABLE_OUT_OF_BOUNDS: "undefined element: out of bounds table access",
    TrapCode.UNDEFINED_ELEMENT: "undefined element: out of bounds table access",
    TrapCode.INTERRUPTED: "interrupt",
    TrapCode.HEAP_MISALIGNED: "unaligned atomic",
    TrapCode.ATOMIC_WAIT_NON_SHARED_MEMORY: "atomic wait on non-shared memory",
    TrapCode.UNCAUGHT_EXCEPTION: "thrown Wasm exception",
    TrapCode.NULL_EXCEPTION_REFERENCE: "null reference",
    TrapCode.NULL_FUNCTION_REFERENCE: "null reference",
    TrapCode.NULL_I31_REFERENCE: "null reference",
    TrapCode.NULL_STRUCTURE_REFERENCE: "null reference",
    TrapCode.NULL_ARRAY_REFERENCE: "null reference",
    TrapCode.ARRAY_OUT_OF_BOUNDS: "out of bounds array access",
}
