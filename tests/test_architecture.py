"""The package's architecture, checked from its source: no import cycles, no reach into another package's privates.

The import graph is built from the AST of every module under ``hwsim/``, imports
inside functions included (they run too, only later); imports under ``if
TYPE_CHECKING:`` are left out (they never run).  Importing a submodule implies
its parent packages, which are always being imported already, so an edge to an
ancestor package is not an edge.

A *private* attribute is one whose name starts with a single underscore.  A
module may use such attributes of its own objects, and of its own package's
objects; outside ``hwsim/runtime/`` (where the embedding facade and the engine
share one package) a module may not use private attributes that another hwsim
package defines: those layers talk through :mod:`hwsim.runtime.internal` and
public methods.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hwsim"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _runtime_nodes(tree: ast.AST):
    """Every node except those under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            stack.extend(node.orelse)
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def _targets(module: str, node: ast.ImportFrom) -> list[str]:
    is_package = MODULES[module].name == "__init__.py"
    package = module.split(".") if is_package else module.split(".")[:-1]
    if node.level:
        base = package[: len(package) - node.level + 1]
        name = ".".join(base + ([node.module] if node.module else []))
    else:
        name = node.module or ""
    subs = [f"{name}.{a.name}" for a in node.names if f"{name}.{a.name}" in MODULES]
    out = ([name] if name in MODULES and len(subs) < len(node.names) else []) + subs
    return [t for t in out if not module.startswith(t + ".")]


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for node in _runtime_nodes(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                graph[module].update(t for t in _targets(module, node) if t != module)
            elif isinstance(node, ast.Import):
                graph[module].update(a.name for a in node.names if a.name in MODULES and a.name != module)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), and self-loops."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_import_graph_has_no_cycles():
    graph = import_graph()
    assert len(graph) > 100 and graph["hwsim.runtime.api"]  # the graph is real
    assert cycles(graph) == []


def test_the_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def _package(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def _private_names(tree: ast.AST) -> set[str]:
    """The private names a module defines: attributes it assigns, functions, classes, variables."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


# Other libraries' privates, each for a reason: argparse documents _SubParsersAction as the type of
# add_subparsers(); the fuzzer's wasmtime oracle calls wasmtime-py's C API with its store context, function,
# global and table handles, to move raw value bits (NaN payloads) that wasmtime-py's public API would change
# and to read exnref tables, which wasmtime-py 50's Table.get cannot;
# the machine hands Unicorn's own handle to its C entry points; a forked compile worker leaves with os._exit
# (no cleanup of the parent's state run in the child).
EXTERNAL = {
    "hwsim/cli": {"_SubParsersAction"},
    "hwsim/compiler/parallel.py": {"_exit"},
    "hwsim/fuzz/execute.py": {"_context", "_global", "_func", "_table", "_new_raw", "_from_ptr"},
    "hwsim/machine/machine.py": {"_uch"},
    "hwsim/machine/cputlb.py": {"_uch"},  # (the binding's engine handle, as machine.py)
    "hwsim/machine/storewatch.py": {"_uch"},  # (its hook and the C one take the engine handle, as machine.py)
}


def private_reaches() -> list[str]:
    """``x._name`` outside hwsim/runtime/ where ``_name`` is not the module's own, nor its package's alone."""
    trees = {module: ast.parse(path.read_text()) for module, path in MODULES.items()}
    by_module = {module: _private_names(tree) for module, tree in trees.items()}
    by_package: dict[str, set[str]] = {}
    for module, names in by_module.items():
        by_package.setdefault(_package(module), set()).update(names)
    found = []
    for module, tree in sorted(trees.items()):
        package = _package(module)
        if package == "hwsim.runtime":
            continue
        where = str(MODULES[module].relative_to(PACKAGE.parent))
        allowed = set().union(*(names for prefix, names in EXTERNAL.items() if where.startswith(prefix)))
        others = set().union(*(names for p, names in by_package.items() if p != package))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")):
                continue
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            name = node.attr
            if name in by_module[module] or name in allowed:
                continue
            if name in by_package[package] and name not in others:
                continue  # private to this package, used by another of its modules
            found.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_package_outside_runtime_reaches_into_another_packages_privates():
    assert private_reaches() == []
