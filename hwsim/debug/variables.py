"""A wasm module's C variables and types (its own DWARF) translated to the code hwsim generated for it.

Clang describes a variable of a wasm function by where it lives in the wasm
machine: a wasm local, a wasm global, the operand stack (``DW_OP_WASM_location``
0xED, kinds 0/1/3 and 2), or linear memory (``DW_OP_addr``, ``DW_OP_fbreg``).
The compiler keeps every wasm local in one home for the whole body of its
function (compiler/frames.py), so each becomes a DWARF location of the RV64
code::

    wasm                                generated code (location, or value pushed)
    local N                             DW_OP_regR (its register), DW_OP_breg8 OFF (its fp slot)
    global N                            vmctx word (s1 + off) -> the global's cell -> value
    operand stack                       none: GDB says <optimized out>
    DW_OP_addr A (linear memory)        DW_OP_addr (memory 0's base + A), or DW_OP_breg18 A (s2
                                        holds the base) when the base is not given
    DW_OP_fbreg X                       DW_OP_fbreg X, the frame base translated as above

A wasm range ``[lo, hi)`` of a location list becomes the generated code of the
wasm instructions in it, less each function's prologue and epilogues (where
the homes do not hold the locals yet, or any more).

C pointers are offsets in linear memory.  A pointer *variable* (a parameter,
a local, a global) is given to GDB as a 64-bit pointer whose value is the
guest virtual address: ``offset + base``, and 0 stays 0 (a DWARF expression:
``dup; bra; skip; const8u base; plus``), so ``print *desc`` and ``p q->used.idx``
read the driver's memory and NULL prints as ``0x0``.  A pointer stored in
memory (a struct member, an array element, what a pointer points to) keeps
its 4 bytes and is shown as the unsigned offset it is (type ``wasm_ptr32``):
GDB has no pointer type that adds a base when followed.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable

from ..compiler.frames import FrameInfo
from ..wasm.errors import MalformedError
from ..wasm.reader import read_sleb, read_uleb
from .dwarf import (
    Die,
    DW_AT_name,
    DW_FORM_data1,
    DW_FORM_data2,
    DW_FORM_data4,
    DW_FORM_data8,
    DW_FORM_exprloc,
    DW_FORM_flag_present,
    DW_FORM_ref4,
    DW_FORM_sdata,
    DW_FORM_sec_offset,
    DW_FORM_string,
    LocationList,
    sleb128,
    uleb128,
)

# Tags and attributes (DWARF 4, section 7.5)
_TAGS = {
    "DW_TAG_array_type": 0x01,
    "DW_TAG_enumeration_type": 0x04,
    "DW_TAG_formal_parameter": 0x05,
    "DW_TAG_member": 0x0D,
    "DW_TAG_pointer_type": 0x0F,
    "DW_TAG_structure_type": 0x13,
    "DW_TAG_subroutine_type": 0x15,
    "DW_TAG_typedef": 0x16,
    "DW_TAG_union_type": 0x17,
    "DW_TAG_unspecified_parameters": 0x18,
    "DW_TAG_base_type": 0x24,
    "DW_TAG_const_type": 0x26,
    "DW_TAG_enumerator": 0x28,
    "DW_TAG_subrange_type": 0x21,
    "DW_TAG_variable": 0x34,
    "DW_TAG_volatile_type": 0x35,
    "DW_TAG_restrict_type": 0x37,
    "DW_TAG_unspecified_type": 0x3B,
    "DW_TAG_atomic_type": 0x47,
}
_QUALIFIERS = (
    "DW_TAG_typedef",
    "DW_TAG_const_type",
    "DW_TAG_volatile_type",
    "DW_TAG_restrict_type",
    "DW_TAG_atomic_type",
)
DW_AT_byte_size, DW_AT_encoding, DW_AT_type, DW_AT_location = 0x0B, 0x3E, 0x49, 0x02
DW_AT_upper_bound, DW_AT_count, DW_AT_const_value = 0x2F, 0x37, 0x1C
DW_AT_data_member_location, DW_AT_bit_size, DW_AT_data_bit_offset = 0x38, 0x0D, 0x6B
DW_AT_prototyped, DW_AT_declaration, DW_AT_decl_line = 0x27, 0x3C, 0x3B
DW_ATE_unsigned = 0x08
# Constant attributes copied from a type DIE as they are (name -> number)
_CONSTANTS = {
    "DW_AT_byte_size": DW_AT_byte_size,
    "DW_AT_encoding": DW_AT_encoding,
    "DW_AT_upper_bound": DW_AT_upper_bound,
    "DW_AT_count": DW_AT_count,
    "DW_AT_const_value": DW_AT_const_value,
    "DW_AT_data_member_location": DW_AT_data_member_location,
    "DW_AT_bit_size": DW_AT_bit_size,
    "DW_AT_data_bit_offset": DW_AT_data_bit_offset,
    "DW_AT_decl_line": DW_AT_decl_line,
}

# DWARF expression operations used here
OP_addr, OP_deref, OP_const4u, OP_const1u, OP_constu, OP_consts = 0x03, 0x06, 0x0C, 0x08, 0x10, 0x11
OP_const8u = 0x0E
OP_dup, OP_and, OP_minus, OP_plus, OP_plus_uconst, OP_skip, OP_bra = 0x12, 0x1A, 0x1C, 0x22, 0x23, 0x2F, 0x28
OP_lit0, OP_lit31, OP_reg0, OP_breg0, OP_regx, OP_fbreg, OP_bregx = 0x30, 0x4F, 0x50, 0x70, 0x90, 0x91, 0x92
OP_piece, OP_deref_size, OP_stack_value, OP_WASM_location = 0x93, 0x94, 0x9F, 0xED
WASM_LOCAL, WASM_GLOBAL, WASM_OPERAND, WASM_GLOBAL_U32 = 0, 1, 2, 3
FP, VMCTX, MEM0 = 8, 9, 18  # DWARF numbers of s0/fp, s1 (vmctx), s2 (memory 0's base)

# Operations of a wasm expression copied as they are: (opcode, operand decoder) ... the stack machine is the same
_COPIED = {
    OP_deref: "",
    OP_dup: "",
    OP_and: "",
    OP_minus: "",
    OP_plus: "",
    OP_plus_uconst: "u",
    OP_constu: "u",
    OP_consts: "s",
    OP_const1u: "1",
    OP_const4u: "4",
    OP_piece: "u",
    OP_deref_size: "1",
    OP_stack_value: "",
}


class _Unsupported(Exception):
    """A wasm expression this translation does not know: the variable has no location."""


def _breg(reg: int, offset: int) -> bytes:
    return bytes([OP_breg0 + reg]) + sleb128(offset) if reg < 32 else bytes([OP_bregx]) + uleb128(reg) + sleb128(offset)


def _reg(reg: int) -> bytes:
    return bytes([OP_reg0 + reg]) if reg < 32 else bytes([OP_regx]) + uleb128(reg)


_MASK32 = bytes([OP_const4u]) + struct.pack("<I", 0xFFFF_FFFF) + bytes([OP_and])
# value (a linear-memory offset, 32 bits) -> its guest virtual address, 0 staying 0


def _memory_base(base: int | None) -> bytes:
    """Push memory 0's base: the constant when it is known (no register: GDB can then watch what it
    locates anywhere), else s2, which holds it in compiled code."""
    return _breg(MEM0, 0) if base is None else bytes([OP_const8u]) + struct.pack("<Q", base)


def _to_address(base: int | None) -> bytes:
    """value (a linear-memory offset, 32 bits) -> its guest virtual address, 0 staying 0."""
    add = _memory_base(base) + bytes([OP_plus])
    return (
        _MASK32 + bytes([OP_dup, OP_bra]) + struct.pack("<h", 3) + bytes([OP_skip]) + struct.pack("<h", len(add)) + add
    )


class Frame:
    """What a translation needs of one generated function: its homes, and how to read a wasm global."""

    def __init__(self, info: FrameInfo, global_word: Callable[[int], int]) -> None:
        self.info = info
        self.global_word = global_word  # wasm global index -> its vmctx word's offset

    def local_value(self, index: int) -> bytes:
        """Push local ``index``'s value."""
        if index >= len(self.info.homes):
            raise _Unsupported
        home = self.info.homes[index]
        return _breg(home, 0) if home >= 0 else _breg(FP, home) + bytes([OP_deref])

    def local_location(self, index: int) -> bytes:
        """Local ``index``'s location (a register, or its frame slot in memory)."""
        if index >= len(self.info.homes):
            raise _Unsupported
        home = self.info.homes[index]
        return _reg(home) if home >= 0 else _breg(FP, home)

    def global_value(self, index: int) -> bytes:
        """Push wasm global ``index``'s value (i32: the low 4 bytes of its cell)."""
        return _breg(VMCTX, self.global_word(index)) + bytes([OP_deref, OP_deref_size, 4])


def translate_expr(expr: bytes, frame: Frame | None, *, pointer: bool, memory_base: int | None = None) -> bytes | None:
    """The RV64 DWARF expression for a wasm one, or None when the value is not anywhere the generated
    code keeps it (the operand stack, an unknown operation).  ``pointer``: the value is a C pointer and
    is given as its guest virtual address."""
    try:
        ops = _translate(bytes(expr), frame, locations=not pointer, memory_base=memory_base)
    except (_Unsupported, IndexError, MalformedError):  # (a cut or overlong LEB128 operand)
        return None
    out, is_value = ops
    if not pointer:
        return out
    if is_value:
        return out[:-1] + _to_address(memory_base) + bytes([OP_stack_value])
    return out + bytes([OP_deref_size, 4]) + _to_address(memory_base) + bytes([OP_stack_value])


def _translate(
    expr: bytes, frame: Frame | None, *, locations: bool = True, memory_base: int | None = None
) -> tuple[bytes, bool]:
    """(expression, whether it computes a value (ends in DW_OP_stack_value) rather than a location);
    ``locations``: a lone local may be given as its register or slot."""
    if locations and len(expr) >= 3 and expr[0] == OP_WASM_location and expr[1] == WASM_LOCAL:
        index, i = read_uleb(expr, 2, 64)
        if expr[i:] == bytes([OP_stack_value]) and frame is not None:
            return frame.local_location(index), False  # the local itself: GDB can also write it
    out = bytearray()
    i = 0
    while i < len(expr):
        op = expr[i]
        i += 1
        if op == OP_WASM_location:
            kind = expr[i]
            i += 1
            if kind == WASM_GLOBAL_U32:
                index = struct.unpack_from("<I", expr, i)[0]
                i += 4
            else:
                index, i = read_uleb(expr, i, 64)
            if frame is None or kind == WASM_OPERAND:
                raise _Unsupported
            out += frame.local_value(index) if kind == WASM_LOCAL else frame.global_value(index)
        elif op == OP_addr:
            address = struct.unpack_from("<I", expr, i)[0]
            out += (
                _breg(MEM0, address)
                if memory_base is None
                else bytes([OP_addr]) + struct.pack("<Q", memory_base + address)
            )
            i += 4
        elif op == OP_fbreg:
            offset, i = read_sleb(expr, i, 64)
            out += bytes([OP_fbreg]) + sleb128(offset)
        elif OP_lit0 <= op <= OP_lit31:
            out.append(op)
        elif op in _COPIED:
            start = i
            operand = _COPIED[op]
            if operand == "u":
                _, i = read_uleb(expr, i, 64)
            elif operand == "s":
                _, i = read_sleb(expr, i, 64)
            elif operand:
                i += int(operand)
            out += bytes([op]) + expr[start:i]
        else:
            raise _Unsupported
    return bytes(out), bool(out) and out[-1] == OP_stack_value


def frame_base(expr: bytes, frame: Frame, *, memory_base: int | None = None) -> bytes | None:
    """DW_AT_frame_base: clang's is a wasm local or global holding the C stack pointer (a linear-memory
    offset); GDB's is that address in guest virtual memory."""
    try:
        value, is_value = _translate(bytes(expr), frame, locations=False, memory_base=memory_base)
    except (_Unsupported, IndexError, MalformedError):  # (a cut or overlong LEB128 operand)
        return None
    if not is_value:
        return None
    return value[:-1] + _MASK32 + _memory_base(memory_base) + bytes([OP_plus])


class TypeTranslator:
    """The module's type DIEs as Dies of the generated code's unit, each translated once per context:
    in memory (a pointer is its 4-byte offset, ``wasm_ptr32``) or as a variable's value (a pointer is a
    64-bit pointer to the target type in memory)."""

    def __init__(self) -> None:
        self.dies: list[Die] = []
        self._done: dict[tuple[int, bool], Die] = {}
        self._ptr32: Die | None = None

    def ptr32(self) -> Die:
        if self._ptr32 is None:
            self._ptr32 = Die(
                _TAGS["DW_TAG_base_type"],
                [
                    (DW_AT_name, DW_FORM_string, "wasm_ptr32"),
                    (DW_AT_encoding, DW_FORM_data1, DW_ATE_unsigned),
                    (DW_AT_byte_size, DW_FORM_data1, 4),
                ],
            )
            self.dies.append(self._ptr32)
        return self._ptr32

    def is_pointer(self, die) -> bool:
        """Whether ``die`` (a pyelftools type DIE) is a pointer, through typedefs and qualifiers."""
        for _ in range(64):
            if die is None:
                return False
            if die.tag == "DW_TAG_pointer_type":
                return True
            if die.tag not in _QUALIFIERS or "DW_AT_type" not in die.attributes:
                return False
            die = die.get_DIE_from_attribute("DW_AT_type")
        return False

    def type_of(self, die, *, value: bool) -> Die | None:
        """The translated type of ``die`` (a pyelftools type DIE); None: void."""
        if die is None:
            return None
        key = (die.offset, value and self.is_pointer(die))
        if key in self._done:
            return self._done[key]
        tag = die.tag
        if tag == "DW_TAG_pointer_type" and not key[1]:
            self._done[key] = self.ptr32()
            return self._done[key]
        if tag not in _TAGS:
            return None
        out = Die(_TAGS[tag], [])
        self._done[key] = out  # before the children: a struct may point to itself
        self.dies.append(out)
        attrs = die.attributes
        if "DW_AT_name" in attrs:
            name = attrs["DW_AT_name"].value
            out.attrs.append((DW_AT_name, DW_FORM_string, name.decode() if isinstance(name, bytes) else str(name)))
        if tag == "DW_TAG_pointer_type":
            out.attrs.append((DW_AT_byte_size, DW_FORM_data1, 8))
        for name, number in _CONSTANTS.items():
            if name in attrs and isinstance(attrs[name].value, int):
                out.attrs.append(constant_attr(number, attrs[name].value))
        if "DW_AT_prototyped" in attrs:
            out.attrs.append((DW_AT_prototyped, DW_FORM_flag_present, True))
        if "DW_AT_declaration" in attrs:
            out.attrs.append((DW_AT_declaration, DW_FORM_flag_present, True))
        if "DW_AT_type" in attrs:
            target = self.type_of(
                die.get_DIE_from_attribute("DW_AT_type"), value=key[1] and tag != "DW_TAG_pointer_type"
            )
            if target is not None:
                out.attrs.append((DW_AT_type, DW_FORM_ref4, target))
        for child in die.iter_children():
            if child.tag in _TAGS:
                translated = self.type_of(child, value=False)
                if translated is not None:
                    self.dies.remove(translated)
                    out.children.append(translated)
        return out


def constant_attr(attr: int, value: int) -> tuple[int, int, object]:
    if value < 0:
        return (attr, DW_FORM_sdata, value)
    form = DW_FORM_data1 if value < 1 << 8 else DW_FORM_data2 if value < 1 << 16 else DW_FORM_data4
    return (attr, DW_FORM_data8 if value >= 1 << 32 else form, value)


def variable_die(
    die, name: str, type_die, types: TypeTranslator, location: bytes | LocationList | None, tag: int | None = None
) -> Die:
    """A DW_TAG_variable or DW_TAG_formal_parameter: its name, type and location (none: optimized out)."""
    out = Die(tag if tag is not None else _TAGS[die.tag], [(DW_AT_name, DW_FORM_string, name)])
    translated = types.type_of(type_die, value=True)
    if translated is not None:
        out.attrs.append((DW_AT_type, DW_FORM_ref4, translated))
    if isinstance(location, LocationList):
        out.attrs.append((DW_AT_location, DW_FORM_sec_offset, location))
    elif location is not None:
        out.attrs.append((DW_AT_location, DW_FORM_exprloc, location))
    return out


def merge_ranges(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for low, high in sorted(ranges):
        if out and low <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], high))
        elif low < high:
            out.append((low, high))
    return out


__all__ = [
    "DW_AT_const_value",
    "Frame",
    "TypeTranslator",
    "constant_attr",
    "frame_base",
    "merge_ranges",
    "translate_expr",
    "variable_die",
]
