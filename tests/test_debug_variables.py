"""hwsim.debug.variables: wasm DWARF locations translated to the homes of the generated code."""

from __future__ import annotations

from hwsim.compiler.frames import FrameInfo
from hwsim.debug.variables import Frame, translate_expr

# local 0 in s4 (x20), local 1 in f8 (DWARF 40), local 2 in the fp slot at -40
FRAME = Frame(FrameInfo(16, 24, ((20, -24),), ((100, 108),), (20, 40, -40)), lambda index: 16 + 8 * index)
STACK_VALUE = 0x9F


def wasm_local(index: int) -> bytes:
    return bytes([0xED, 0x00, index, STACK_VALUE])


def test_a_local_in_its_home_is_that_register_or_frame_slot():
    assert translate_expr(wasm_local(0), FRAME, pointer=False) == bytes([0x50 + 20])  # DW_OP_reg20
    assert translate_expr(wasm_local(1), FRAME, pointer=False) == bytes([0x90, 40])  # DW_OP_regx 40
    assert translate_expr(wasm_local(2), FRAME, pointer=False) == bytes([0x78, 0x58])  # DW_OP_breg8 -40


def test_values_on_the_operand_stack_or_unknown_are_optimized_out():
    assert translate_expr(bytes([0xED, 0x02, 0, STACK_VALUE]), FRAME, pointer=False) is None
    assert translate_expr(wasm_local(7), FRAME, pointer=False) is None  # no such local
    assert translate_expr(bytes([0x96]), FRAME, pointer=False) is None  # DW_OP_nop: not translated


def test_linear_memory_is_at_s2_and_a_global_is_read_through_vmctx():
    assert translate_expr(bytes([0x03, 0x10, 0x10, 0x10, 0x00]), None, pointer=False) == bytes(
        [0x82, 0x90, 0xA0, 0xC0, 0x00]
    )  # breg18 0x101010
    out = translate_expr(bytes([0xED, 0x03, 2, 0, 0, 0, STACK_VALUE]), FRAME, pointer=False)
    assert out == bytes([0x79, 32, 0x06, 0x94, 4, STACK_VALUE])  # breg9 32; deref; deref_size 4


def test_with_memory_0_s_base_known_linear_memory_is_an_address():
    out = translate_expr(bytes([0x03, 0x10, 0x10, 0x10, 0x00]), None, pointer=False, memory_base=0x2_0000_0000)
    assert out == bytes([0x03]) + (0x2_0010_1010).to_bytes(8, "little")  # DW_OP_addr: GDB can watch it


def _evaluate(expr: bytes, registers: dict[int, int]) -> int:
    """A DWARF stack machine for the operations the pointer conversion uses."""
    stack: list[int] = []
    i = 0
    while i < len(expr):
        op = expr[i]
        i += 1
        if 0x70 <= op < 0x90:
            offset, shift = 0, 0
            while True:
                byte = expr[i]
                i += 1
                offset |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    if byte & 0x40:
                        offset -= 1 << shift
                    break
            stack.append((registers[op - 0x70] + offset) & (1 << 64) - 1)
        elif op in (0x0C, 0x0E):  # const4u, const8u
            size = 4 if op == 0x0C else 8
            stack.append(int.from_bytes(expr[i : i + size], "little"))
            i += size
        elif op == 0x1A:
            b, a = stack.pop(), stack.pop()
            stack.append(a & b)
        elif op == 0x22:
            b, a = stack.pop(), stack.pop()
            stack.append((a + b) & (1 << 64) - 1)
        elif op == 0x12:
            stack.append(stack[-1])
        elif op == 0x28:
            jump = int.from_bytes(expr[i : i + 2], "little", signed=True)
            i += 2
            if stack.pop():
                i += jump
        elif op == 0x2F:
            i += 2 + int.from_bytes(expr[i : i + 2], "little", signed=True)
        elif op == STACK_VALUE:
            assert i == len(expr)
        else:
            raise AssertionError(f"operation {op:#x}")
    return stack[-1]


def test_a_pointer_variable_is_its_guest_address_and_null_stays_zero():
    expr = translate_expr(wasm_local(0), FRAME, pointer=True)
    assert expr is not None and expr[-1] == STACK_VALUE
    base = 0x2_0000_0000
    assert _evaluate(expr, {20: 0x1234, 18: base}) == base + 0x1234
    assert _evaluate(expr, {20: 0xFFFF_FFFF_8000_0000, 18: base}) == base + 0x8000_0000  # upper bits dropped
    assert _evaluate(expr, {20: 0, 18: base}) == 0
    known = translate_expr(wasm_local(0), FRAME, pointer=True, memory_base=base)
    assert known is not None and 0x82 not in known  # no s2: the base is a constant
    assert _evaluate(known, {20: 0x1234}) == base + 0x1234 and _evaluate(known, {20: 0}) == 0
