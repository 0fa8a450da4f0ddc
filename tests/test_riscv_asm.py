"""hwsim.riscv.asm: the encoder checked against capstone's decoder, and li against the CPU."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim import Machine
from hwsim.riscv import asm as A
from hwsim.riscv.disasm import disassemble, disassemble_one

regs = st.sampled_from(A.ABI_NAMES)
nonzero = st.sampled_from(A.ABI_NAMES[1:])  # capstone prints aliases (neg, beqz, ...) for x0 operands
imm12 = st.integers(-2048, 2047)


def text(word: int) -> str:
    return disassemble_one(word.to_bytes(4, "little"), 0).text


@settings(max_examples=300)
@given(
    rd=regs,
    rs1=nonzero,
    rs2=nonzero,
    op=st.sampled_from(
        [
            "add",
            "sub",
            "xor",
            "or_",
            "and_",
            "sll",
            "srl",
            "sra",
            "slt",
            "sltu",
            "mul",
            "mulh",
            "mulhu",
            "div",
            "divu",
            "rem",
            "remu",
            "addw",
            "subw",
            "mulw",
        ]
    ),
)
def test_r_type_matches_capstone(rd, rs1, rs2, op):
    name = op.rstrip("_")
    assert text(getattr(A, op)(rd, rs1, rs2)) == f"{name} {rd}, {rs1}, {rs2}"


def fmt_imm(v: int) -> str:
    """Capstone's immediate style: decimal up to 9, hex beyond."""
    if -9 <= v <= 9:
        return str(v)
    return hex(v) if v >= 0 else f"-{hex(-v)}"


@settings(max_examples=300)
@given(
    rd=regs,
    rs1=regs,
    imm=imm12,
    op=st.sampled_from(["ld", "lw", "lwu", "lh", "lhu", "lb", "lbu", "sd", "sw", "sh", "sb"]),
)
def test_loads_and_stores_match_capstone(rd, rs1, imm, op):
    ins = disassemble_one(getattr(A, op)(rd, rs1, imm).to_bytes(4, "little"), 0)
    assert (ins.mnemonic, ins.mem_base, ins.mem_disp) == (op, rs1, imm)
    assert ins.op_str.startswith(f"{rd}, ")


@settings(max_examples=200)
@given(
    rs1=nonzero,
    rs2=nonzero,
    off=st.integers(-2048, 2047).map(lambda x: x * 2),
    op=st.sampled_from(["beq", "bne", "blt", "bge", "bltu", "bgeu"]),
)
def test_branches_match_capstone(rs1, rs2, off, op):
    ins = disassemble_one(getattr(A, op)(rs1, rs2, off).to_bytes(4, "little"), 0x1000)
    assert ins.text == f"{op} {rs1}, {rs2}, {fmt_imm(off)}"  # capstone prints the relative offset


def test_other_formats():
    assert text(A.jal("ra", -8)) == "jal -8"
    assert text(A.lui("a0", 0xFFFFF)) == "lui a0, 0xfffff"
    assert text(A.addi("a0", "a1", -1)) == "addi a0, a1, -1"
    assert text(A.slli("a0", "a1", 63)) == "slli a0, a1, 0x3f"
    assert text(A.sraiw("a0", "a1", 31)) == "sraiw a0, a1, 0x1f"
    assert text(A.ECALL) == "ecall" and text(A.EBREAK) == "ebreak"
    assert text(A.sfence_vma("a0", "a1")) == "sfence.vma a0, a1"
    assert text(A.csrrw("zero", 0x180, "a0")) == "csrw satp, a0"


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: A.addi("a0", "a0", 2048), "immediate 2048 does not fit in 12 signed bits"),
        (lambda: A.beq("a0", "a0", 3), "branch offset 3 is odd"),
        (lambda: A.jal("ra", 1 << 20), "jump offset 1048576 does not fit in 21 signed bits"),
        (lambda: A.slli("a0", "a0", 64), r"shift amount 64 out of range \[0, 64\)"),
        (lambda: A.add("a0", "r7", "a0"), "unknown register 'r7'"),
    ],
)
def test_encoding_errors(call, message):
    with pytest.raises(A.EncodeError, match=message):
        call()


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda M: M.addi("a0", "a0", 2048), "immediate 2048 does not fit in 12 signed bits"),
        (lambda M: M.beq("a0", "a0", 3), "branch offset 3 is odd"),
        (lambda M: M.add("a0", "r7", "a0"), "unknown register 'r7'"),
    ],
)
def test_memoized_encoders_raise_every_time(call, message):
    """The compiler's memoized encoders raise the plain encoders' errors, on every call (never remembered)."""
    memo = A.memoized(maxsize=8)
    for _ in range(2):
        with pytest.raises(A.EncodeError, match=message):
            call(memo)


def test_memoized_encoders_give_the_plain_words():
    memo = A.memoized(maxsize=4)  # smaller than the calls below: entries are evicted and encoded again
    calls = [("addi", (5, 6, imm)) for imm in range(-2048, 2048, 97)]
    calls += [("add", (1, 2, 3)), ("beq", (10, 11, -4096)), ("fadd", (1, 2, 3, True)), ("fadd", (1, 2, 3, False))]
    for name, args in calls * 2:
        assert getattr(memo, name)(*args) == getattr(A, name)(*args), (name, args)
    assert memo.fcvt_to_int(5, 1, double=True, signed=False, wide=True) == A.fcvt_to_int(
        5, 1, double=True, signed=False, wide=True
    )
    # what is no encoder stays as it is: constants, classes, and li_words (a fresh list each call)
    assert memo.NOP == A.NOP and memo.EncodeError is A.EncodeError and memo.Assembler is A.Assembler
    first = memo.li_words(5, 0x1234_5678_9ABC)
    first.append(0)
    assert memo.li_words(5, 0x1234_5678_9ABC) == A.li_words(5, 0x1234_5678_9ABC) != first


def test_assembler_labels_backward_and_forward():
    a = A.Assembler(0x1000)
    a.label("top").branch("bne", "a0", "zero", "out").jump("top").label("out")
    code = a.finish()
    assert [i.text for i in disassemble(code, 0x1000)] == ["bnez a0, 8", "j -4"]
    with pytest.raises(A.EncodeError, match="undefined label 'nowhere'"):
        A.Assembler().jump("nowhere").finish()
    with pytest.raises(A.EncodeError, match="label 'x' defined twice"):
        A.Assembler().label("x").label("x")


@pytest.fixture(scope="module")
def cpu():
    m = Machine(ram_size=1 << 20)
    m.set_reg("priv", 3)
    return m


@settings(max_examples=300, deadline=None)
@given(
    value=st.one_of(
        st.integers(0, (1 << 64) - 1),
        st.integers(-(1 << 63), (1 << 63) - 1),
        st.sampled_from(
            [0, -1, 1 << 31, (1 << 31) - 1, -(1 << 31), 1 << 63, 0x7FF, 0x800, 0xFFFF_FFFF, 0x8000_0000_0000_0800]
        ),
    )
)
def test_li_loads_any_64_bit_constant(cpu, value):
    words = A.li_words("a0", value)
    assert len(words) <= 8
    base = cpu.ram.base
    cpu.phys.write(base, A.Assembler(base).emit(*words).finish())
    cpu.code_changed()
    assert cpu.run(base, until=base + 4 * len(words)).ok
    assert cpu.get_reg("a0") == value & 0xFFFF_FFFF_FFFF_FFFF


fregs = st.sampled_from(A.FP_ABI_NAMES)


@settings(max_examples=200)
@given(
    rd=fregs,
    rs1=fregs,
    rs2=fregs,
    double=st.booleans(),
    op=st.sampled_from(["fadd", "fsub", "fmul", "fdiv", "fmin", "fmax", "fsgnj", "fsgnjn", "fsgnjx"]),
)
def test_fp_arithmetic_matches_capstone(rd, rs1, rs2, double, op):
    ins = disassemble_one(getattr(A, op)(rd, rs1, rs2, double).to_bytes(4, "little"), 0)
    suffix = ".d" if double else ".s"
    if op.startswith("fsgnj") and rs1 == rs2:  # printed as fmv/fneg/fabs
        return
    assert ins.mnemonic == op + suffix
    assert ins.op_str.split(", ")[:3] == [rd, rs1, rs2]


@pytest.mark.parametrize(
    "word,expected",
    [
        (A.flw("fa0", "sp", 8), "flw fa0, 8(sp)"),
        (A.fsd("fs1", "a0", -16), "fsd fs1, -0x10(a0)"),
        (A.fld("ft11", "s0", 2040), "fld ft11, 0x7f8(s0)"),
        (A.fsqrt("fa0", "fa1", True), "fsqrt.d fa0, fa1, rne"),
        (A.feq("a0", "fa0", "fa1", False), "feq.s a0, fa0, fa1"),
        (A.flt("a0", "fa0", "fa1", True), "flt.d a0, fa0, fa1"),
        (A.fle("t0", "ft0", "ft1", True), "fle.d t0, ft0, ft1"),
        (A.fclass("a0", "fa0", True), "fclass.d a0, fa0"),
        (A.fcvt_to_int("a0", "fa0", double=True, signed=True, wide=False), "fcvt.w.d a0, fa0, rtz"),
        (A.fcvt_to_int("a0", "fa0", double=False, signed=False, wide=True), "fcvt.lu.s a0, fa0, rtz"),
        (A.fcvt_from_int("fa0", "a0", double=True, signed=False, wide=True), "fcvt.d.lu fa0, a0, rne"),
        (A.fcvt_s_d("fa0", "fa1"), "fcvt.s.d fa0, fa1, rne"),
        (A.fcvt_d_s("fa0", "fa1"), "fcvt.d.s fa0, fa1"),
        (A.fmv_x_w("a0", "fa0"), "fmv.x.w a0, fa0"),
        (A.fmv_d_x("fa0", "a0"), "fmv.d.x fa0, a0"),
        (A.csrrs("a0", A.CSR_FFLAGS, "zero"), "frflags a0"),
        (A.sllw("a0", "a1", "a2"), "sllw a0, a1, a2"),
        (A.remuw("a0", "a1", "a2"), "remuw a0, a1, a2"),
    ],
)
def test_fp_and_w_instructions_match_capstone(word, expected):
    assert text(word) == expected
