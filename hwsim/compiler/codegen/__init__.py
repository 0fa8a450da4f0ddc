"""Single-pass code generation from a validated WebAssembly function (ISA-neutral).

In the manner of Wasmtime's Winch and V8's Liftoff: one walk over the
function's instructions, asking a :class:`~hwsim.compiler.masm.MacroAssembler`
for machine code one operation at a time.  One module per concern, as Winch's
``codegen/``::

    env.py       ModuleEnv: the module-wide facts (types, memories, tables, globals, vmctx layout)
    prepass.py   one walk before code generation: local weights, aux slots, calls; the locals calls separate
    context.py   the value stack (REG/CONST/LOCAL/SLOT values) and register allocation; locals' homes
    control.py   control frames (func/block/loop/if), branches, joins, unreachable code
    call.py      the ABI: parameters, arguments, results, returns; direct, indirect and builtin calls
    fuel.py      metering: operator costs, where fuel is counted and checked (checkpoints), bulk sizes
    visitor.py   FuncCodegen: one handler per instruction and the dispatch table

Nothing here knows an ISA: registers, frame offsets and ABI locations come
from the macro-assembler.
"""

from __future__ import annotations

from ..errors import CompileError, CompilerBug
from .env import ModuleEnv, module_env
from .visitor import DISPATCH, FuncCodegen

__all__ = ["DISPATCH", "CompileError", "CompilerBug", "FuncCodegen", "ModuleEnv", "module_env"]
