"""``hwsim disasm MODULE [--func NAME]``: each WebAssembly instruction beside the RISC-V code made for it."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from ..errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "disasm",
        help="show each wasm instruction beside the RISC-V code generated for it",
        description="Compile a module and print, for each function, every WebAssembly "
        "instruction followed by the RISC-V instructions generated for it (capstone).",
    )
    p.add_argument(
        "module", metavar="MODULE", help="a .wasm module, or a C driver directory (built first, as hwsim run builds it)"
    )
    p.add_argument(
        "--func", dest="function", metavar="NAME", help="only this function (export name, name-section name, or index)"
    )
    p.set_defaults(func=run)


def format_instr(code: int, imm) -> str:
    from ..wasm import opcodes as op

    name = op.opcode_name(code)
    if imm is None:
        return name
    kind = op.IMMEDIATE.get(code)
    if kind == op.MEMARG:
        mem, align, offset = imm
        parts = [f"offset={offset}"] if offset else []
        if mem:
            parts.insert(0, str(mem))
        return " ".join([name, *parts])
    if kind == op.BR_TABLE:
        labels, default = imm
        return f"{name} {' '.join(map(str, labels))} {default}"
    if kind in (op.I32_CONST, op.I64_CONST):
        bits = 32 if kind == op.I32_CONST else 64
        return f"{name} {imm - (1 << bits) if imm >> (bits - 1) else imm}"
    if kind in (op.F32_CONST, op.F64_CONST):
        return f"{name} {imm:#x}"
    if isinstance(imm, tuple):
        return f"{name} {' '.join(map(str, imm))}"
    return f"{name} {imm}"


def run(args: argparse.Namespace) -> int:
    from ..compiler import compile_module
    from ..riscv.disasm import disassemble
    from ..wasm import load_module
    from ..wasm.types import ExternKind

    path = Path(args.module)
    if path.is_dir():
        from ..driver import build_driver

        path = build_driver(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {str(path)!r}: {exc.strerror}") from None
    module = load_module(data)
    compiled = compile_module(module)
    nimp = module.num_imported_funcs
    names = {e.index: e.name for e in module.exports if e.kind == ExternKind.FUNC}
    selected: Sequence[int] = range(nimp, nimp + len(module.funcs))
    if args.function is not None:
        wanted = [i for i in selected if args.function in (names.get(i), module.get_func_name(i), str(i))]
        if not wanted:
            known = ", ".join(sorted({n for i in selected for n in (names.get(i), module.get_func_name(i)) if n}))
            raise ConfigError(f"no function {args.function!r} in {args.module}; named functions: {known or 'none'}")
        selected = wanted
    for index in selected:
        i = index - nimp
        func = module.funcs[i]
        label = names.get(index) or module.get_func_name(index) or ""
        start, size = compiled.func_offsets[i], compiled.func_sizes[i]
        print(f"function {index} {label}  ({module.types[func.type_index]}; {size} bytes of RISC-V code)")
        instrs = {off: (code, imm) for code, imm, off in func.body}
        marks = [(off, wasm) for off, f_index, wasm in compiled.pc_map if f_index == index]
        for k, (off, wasm) in enumerate(marks):
            end = marks[k + 1][0] if k + 1 < len(marks) else start + size
            code_imm = instrs.get(wasm)
            title = format_instr(*code_imm) if code_imm else "(prologue)"
            print(f"  {wasm:#06x}  {title}")
            for insn in disassemble(compiled.code[off:end], off - start):
                print(f"            {insn.address:#06x}: {insn.text}")
        print()
    return 0
