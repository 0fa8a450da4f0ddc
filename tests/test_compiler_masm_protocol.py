"""hwsim.compiler.masm: the MacroAssembler protocol is the whole contract, and the RISC-V backend implements it.

Signatures are compared with ``inspect`` (names, kinds, defaults, resolved
annotations); the code generator's uses of the macro-assembler are read from
its source with ``ast``, so an operation added to one side only fails here.
"""

from __future__ import annotations

import ast
import inspect
import typing
from pathlib import Path

import pytest

import hwsim.compiler
from hwsim.compiler.isa.riscv64.masm import RiscvMasm
from hwsim.compiler.masm import MacroAssembler
from hwsim.compiler.regs import Reg

COMPILER = Path(hwsim.compiler.__file__).parent
FRONT = sorted((COMPILER / "codegen").glob("*.py")) + [COMPILER / "__init__.py"]  # everything that drives a masm

METHODS = sorted(
    name
    for name, value in vars(MacroAssembler).items()
    if inspect.isfunction(value) and (not name.startswith("_") or name == "__init__")
)
ATTRIBUTES = sorted(typing.get_type_hints(MacroAssembler))
MEMBERS = set(METHODS) | set(ATTRIBUTES)


def _resolved(func) -> tuple:
    hints = typing.get_type_hints(func)
    sig = inspect.signature(func)
    params = tuple((p.name, p.kind, p.default, hints.get(p.name)) for p in sig.parameters.values())
    return params, hints.get("return")


def test_the_protocol_lists_every_member_once_with_one_line_of_doc():
    assert len(METHODS) >= 55 and len(ATTRIBUTES) >= 8
    source = inspect.getsource(MacroAssembler)
    for name in METHODS:
        doc = inspect.getdoc(getattr(MacroAssembler, name))
        assert doc and "\n" not in doc, name
    for name in ATTRIBUTES:  # an attribute's doc is the string literal right after its annotation
        assert f"    {name}: " in source and '"""' in source.split(f"    {name}: ", 1)[1].splitlines()[1], name


@pytest.mark.parametrize("name", METHODS)
def test_the_riscv_backend_implements_each_operation_with_the_protocol_signature(name):
    impl = vars(RiscvMasm).get(name)
    assert inspect.isfunction(impl), f"RiscvMasm does not define {name}"
    assert _resolved(impl) == _resolved(getattr(MacroAssembler, name))


@pytest.mark.parametrize("name", ATTRIBUTES)
def test_the_riscv_backend_has_each_attribute_with_its_type(name):
    masm = RiscvMasm()
    assert hasattr(masm, name), f"RiscvMasm has no {name}"
    value = getattr(masm, name)
    hint = typing.get_type_hints(MacroAssembler)[name]
    origin = typing.get_origin(hint) or hint
    assert isinstance(value, origin), name
    if hint == tuple[Reg, ...]:
        assert value and all(isinstance(r, Reg) for r in value), name


def _masm_uses(path: Path) -> set[str]:
    """Attributes read from a macro-assembler in ``path``: ``masm.X``, ``self.masm.X``, ``ctx.masm.X``."""
    uses = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Attribute):
            continue
        base = node.value
        if (isinstance(base, ast.Name) and base.id in ("masm", "m")) or (
            isinstance(base, ast.Attribute) and base.attr in ("masm", "m")
        ):
            uses.add(node.attr)
    return uses


def test_the_code_generator_uses_only_the_protocol_and_the_protocol_only_what_is_used():
    used = set().union(*(_masm_uses(p) for p in FRONT))
    assert used - MEMBERS == set(), "used but not in the MacroAssembler protocol"
    assert MEMBERS - used == {"__init__"}, "in the protocol but used by nobody"


def _imports(path: Path) -> list[str]:
    """Absolute names of the modules ``path`` imports (relative imports resolved)."""
    package = ".".join(path.relative_to(COMPILER.parent.parent).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    else:
        package = package.removesuffix(".__init__")
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module
            out.append(name)
            out.extend(f"{name}.{alias.name}" for alias in node.names)
    return out


def test_the_code_generator_knows_no_isa_and_the_compiler_no_runtime():
    for path in sorted((COMPILER / "codegen").glob("*.py")):
        assert not [m for m in _imports(path) if ".isa" in m or m.startswith("hwsim.riscv")], path.name
    for path in sorted(COMPILER.rglob("*.py")):
        assert not [m for m in _imports(path) if m.startswith("hwsim.runtime")], path.name


def test_the_runtime_moves_values_without_building_a_backend():
    runtime = COMPILER.parent / "runtime"
    for path in sorted(runtime.glob("*.py")):
        assert not [m for m in _imports(path) if m.startswith("hwsim.compiler.isa") and ".masm" in m], path.name
