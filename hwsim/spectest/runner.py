"""The spec-test runner: every command of a converted ``.wast`` script, one honest outcome each.

Each command ends as exactly one of ``passed`` (it ran and the comparison
held), ``failed`` (it ran and did not, or something crashed) or ``skipped``
(it could not run; the reason is recorded).  What the front end checks on
its own, the runner checks without an engine::

    command                 checked by           passes when
    module                  decode + validate    valid, and instantiated if the engine can run it
                            (+ engine)           (a validate-only engine: valid)
    module_definition       decode + validate    valid
    assert_malformed        decode               MalformedError whose reason starts with the script's text
    assert_invalid          decode + validate    InvalidError whose reason starts with the script's text
    assert_unlinkable       validate + engine    valid, then LinkError with the script's text
    assert_uninstantiable   validate + engine    valid, then Trap while instantiating
    module_instance, register, action,
    assert_return, assert_trap, assert_exhaustion          engine
    assert_exception        engine               an exception reaches the host uncaught (Thrown)

Skipped: text-format ``assert_malformed`` modules (hwsim decodes binary only),
modules using features outside hwsim's scope (UnsupportedFeatureError) and
every command that uses such a module, values outside the scope (GC
references), and everything the engine cannot run (the default
:class:`~hwsim.spectest.engine.ValidateOnlyEngine` runs nothing).

Engine outcomes (traps, link errors, exhaustion) match when the engine's
reason and the script's text agree up to the shorter one (the reference
interpreter adds details such as ``uninitialized element 2`` that other
engines do not report).
"""

from __future__ import annotations

import dataclasses
import subprocess
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..wasm import (
    DecodedModule,
    Features,
    InvalidError,
    MalformedError,
    UnsupportedFeatureError,
    WasmError,
    decode_module,
    validate,
)
from .engine import Engine, EngineError, Exhaustion, LinkError, NotSupportedByEngine, Thrown, Trap, ValidateOnlyEngine
from .values import UnsupportedValue, Value, parse_expected, parse_value, results_match
from .wast import Script, WastError, find_wasm_tools, load_script, read_module

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
TEXT_MODULE = "text-format module (hwsim decodes binary only)"
TEXT_REJECTED = "text-format module: rejected by wasm-tools parse (hwsim's text front end)"


@dataclass(frozen=True, slots=True)
class Outcome:
    line: int
    command: str
    status: str
    reason: str = ""


@dataclass
class FileResult:
    name: str
    path: Path
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def passed(self) -> int:
        return self.count(PASSED)

    @property
    def failed(self) -> int:
        return self.count(FAILED)

    @property
    def skipped(self) -> int:
        return self.count(SKIPPED)

    def counts_by_command(self) -> dict[str, Counter]:
        out: dict[str, Counter] = {}
        for o in self.outcomes:
            out.setdefault(o.command, Counter())[o.status] += 1
        return out


@dataclass
class RunResult:
    files: list[FileResult]
    seconds: float = 0.0

    @property
    def passed(self) -> int:
        return sum(f.passed for f in self.files)

    @property
    def failed(self) -> int:
        return sum(f.failed for f in self.files)

    @property
    def skipped(self) -> int:
        return sum(f.skipped for f in self.files)

    def to_json(self) -> dict:
        return {
            "files": {f.name: {"passed": f.passed, "failed": f.failed, "skipped": f.skipped} for f in self.files},
            "passed": self.passed,
            "failed": self.failed,
            "skipped": self.skipped,
        }


def default_features(path: Path) -> Features:
    """Core scripts predate custom page sizes (they expect limits flag 0x08 to be malformed); the threads
    proposal's scripts predate multi-memory, reference types' multiple tables and memory64 (they expect
    "multiple memories", "multiple tables" and 32-bit limits)."""
    parts = Path(path).resolve().parts
    if "threads" in parts:
        return Features(custom_page_sizes=False, multi_memory=False, multi_table=False, memory64=False)
    return Features(custom_page_sizes="custom-page-sizes" in parts)


class _Skip(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class _Fail(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Loaded:
    """A module a later command may use: an instance, or why there is none."""

    module: DecodedModule | None = None
    binary: bytes | None = None
    instance: object | None = None
    unavailable: str | None = None


class SpecTestRunner:
    """Runs ``.wast`` scripts.  ``engine`` executes (default: validate only)."""

    def __init__(
        self,
        engine: Engine[Any] | None = None,
        *,
        features: dict[str, bool] | None = None,
        cache_dir: str | None = None,
    ):
        self.engine: Engine[Any] = engine if engine is not None else ValidateOnlyEngine()
        self.feature_overrides = dict(features or {})
        self.cache_dir = cache_dir

    def features_for(self, path: Path) -> Features:
        base = default_features(path)
        if not self.feature_overrides:
            return base
        return dataclasses.replace(base, **self.feature_overrides)

    def run(self, paths, *, names: list[str] | None = None) -> RunResult:
        start = time.perf_counter()
        paths = [Path(p) for p in paths]
        if names is None:
            names = display_names(paths)
        files = [self.run_file(p, name=n) for p, n in zip(paths, names)]
        return RunResult(files, time.perf_counter() - start)

    def run_file(self, path, *, name: str | None = None) -> FileResult:
        path = Path(path)
        result = FileResult(name or path.name, path)
        start = time.perf_counter()
        try:
            script = load_script(path, cache_dir=self.cache_dir)
        except WastError as exc:
            result.outcomes.append(Outcome(0, "script", FAILED, str(exc)))
        else:
            _FileRun(self, script, result).run()
        result.seconds = time.perf_counter() - start
        return result


def display_names(paths: list[Path]) -> list[str]:
    """Base names, or the paths as given where two scripts share a base name."""
    counts = Counter(p.name for p in paths)
    return [p.name if counts[p.name] == 1 else str(p) for p in paths]


class _FileRun:
    def __init__(self, runner: SpecTestRunner, script: Script, result: FileResult):
        self.runner = runner
        self.engine = runner.engine
        self.script = script
        self.result = result
        self.features = runner.features_for(script.path)
        self.current: _Loaded | None = None
        self.named: dict[str, _Loaded] = {}
        self.definitions: dict[str, _Loaded] = {}
        self.registry: dict[str, object] = {}
        self.unregistered: dict[str, str] = {}  # names whose register command was skipped, and why

    def run(self) -> None:
        begin_file = getattr(self.engine, "begin_file", None)
        if begin_file is not None:  # an engine that keeps one store per script
            begin_file()
        for cmd in self.script.commands:
            kind = cmd.get("type", "?")
            line = cmd.get("line", 0)
            handler = getattr(self, "cmd_" + kind, None)
            try:
                if handler is None:
                    raise _Skip(f"command type {kind} is not supported by the runner")
                note = handler(cmd) or ""
            except _Skip as s:
                self.result.outcomes.append(Outcome(line, kind, SKIPPED, s.reason))
            except _Fail as f:
                self.result.outcomes.append(Outcome(line, kind, FAILED, f.reason))
            except NotSupportedByEngine as exc:
                self.result.outcomes.append(Outcome(line, kind, SKIPPED, exc.reason))
            except Exception as exc:  # a crash is a failure, never the end of the run
                where = traceback.extract_tb(exc.__traceback__)[-1]
                self.result.outcomes.append(
                    Outcome(
                        line,
                        kind,
                        FAILED,
                        f"internal error: {type(exc).__name__}: {exc} ({Path(where.filename).name}:{where.lineno})",
                    )
                )
            else:
                self.result.outcomes.append(Outcome(line, kind, PASSED, note))

    # Loading -------------------------------------------------------------------

    def binary_of(self, cmd: dict) -> bytes:
        filename = cmd.get("filename")
        if cmd.get("module_type") == "text":
            filename = cmd.get("binary_filename")
            if filename is None:
                raise _Skip(TEXT_MODULE)
        if filename is None:
            raise _Fail("command names no module file")
        try:
            return read_module(self.script, filename)
        except WastError as exc:
            raise _Fail(str(exc)) from None

    def load(self, data: bytes) -> DecodedModule:
        """Decode and validate; WasmError propagates."""
        module = decode_module(data, features=self.features)
        validate(module)
        return module

    def load_valid(self, cmd: dict) -> tuple[DecodedModule, bytes]:
        """A module the script says is valid: failure to load it is a failure of the command."""
        data = self.binary_of(cmd)
        try:
            return self.load(data), data
        except UnsupportedFeatureError as exc:
            raise _Skip(str(exc)) from None
        except WasmError as exc:
            raise _Fail(f"module should be valid but was rejected: {type(exc).__name__}: {exc}") from None

    def bind(self, cmd: dict, loaded: _Loaded) -> None:
        self.current = loaded
        name = cmd.get("name")
        if name:
            self.named[name] = loaded

    def instance_of(self, name: str | None) -> object:
        loaded = self.named.get(name) if name else self.current
        if loaded is None:
            if name:
                raise _Fail(f"no module named {name}")
            raise _Fail("no module has been defined yet")
        if loaded.unavailable or loaded.instance is None:
            raise _Skip(loaded.unavailable or "module not instantiated")
        return loaded.instance

    # Module commands -------------------------------------------------------------

    def cmd_module(self, cmd: dict) -> str:
        placeholder = _Loaded(unavailable="the module did not load")
        self.bind(cmd, placeholder)
        try:
            module, data = self.load_valid(cmd)
        except _Skip as s:
            placeholder.unavailable = s.reason
            raise
        placeholder.module, placeholder.binary = module, data
        try:
            placeholder.instance = self.instantiate(module, data)
        except NotSupportedByEngine as exc:
            # Valid, which is all this command can check without an engine that runs it.
            placeholder.unavailable = exc.reason
            return f"validated; not instantiated ({exc.reason})"
        except EngineError as exc:
            raise _Fail(f"instantiation failed: {type(exc).__name__}: {exc}") from None
        placeholder.unavailable = None
        return ""

    def cmd_module_definition(self, cmd: dict) -> str:
        placeholder = _Loaded(unavailable="the module definition did not load")
        if cmd.get("name"):
            self.definitions[cmd["name"]] = placeholder
        try:
            module, data = self.load_valid(cmd)
        except _Skip as s:
            placeholder.unavailable = s.reason
            raise
        placeholder.module, placeholder.binary, placeholder.unavailable = module, data, None
        return "validated"

    def cmd_module_instance(self, cmd: dict) -> str:
        loaded = _Loaded(unavailable="the instance was not created")
        instance_name = cmd.get("instance")
        self.current = loaded
        if instance_name:
            self.named[instance_name] = loaded
        definition_name = cmd.get("module")
        definition = self.definitions.get(definition_name) if definition_name is not None else None
        if definition is None:
            raise _Fail(f"no module definition named {cmd.get('module')}")
        if definition.unavailable:
            loaded.unavailable = definition.unavailable
            raise _Skip(f"module definition not available: {definition.unavailable}")
        # An available definition was decoded and validated (cmd_module_definition).
        assert definition.module is not None and definition.binary is not None
        try:
            loaded.instance = self.instantiate(definition.module, definition.binary)
        except NotSupportedByEngine as exc:
            loaded.unavailable = exc.reason
            raise
        except EngineError as exc:
            raise _Fail(f"instantiation failed: {type(exc).__name__}: {exc}") from None
        loaded.module, loaded.binary, loaded.unavailable = definition.module, definition.binary, None
        return ""

    def cmd_register(self, cmd: dict) -> str:
        try:
            instance = self.instance_of(cmd.get("name"))
        except _Skip as s:
            self.unregistered[cmd["as"]] = s.reason
            raise
        self.registry[cmd["as"]] = instance
        self.unregistered.pop(cmd["as"], None)
        return ""

    def instantiate(self, module: DecodedModule, data: bytes) -> object:
        """Instantiate through the engine, unless an import names a module whose registration was skipped."""
        for imp in module.imports:
            if imp.module in self.unregistered:
                raise NotSupportedByEngine(
                    f'imports from "{imp.module}", which is not available: {self.unregistered[imp.module]}'
                )
        return self.engine.instantiate(module, data, self.registry)

    # Assertions on modules -------------------------------------------------------

    def cmd_assert_malformed(self, cmd: dict) -> str:
        if cmd.get("module_type") == "text" and cmd.get("binary_filename") is None:
            return self.text_malformed(cmd)
        data = self.binary_of(cmd)
        expected = cmd.get("text", "")
        try:
            self.load(data)
        except MalformedError as exc:
            if exc.reason.startswith(expected):
                return ""
            raise _Fail(
                f"malformed as expected, but the reason {exc.reason!r} does not start with {expected!r}"
            ) from None
        except UnsupportedFeatureError as exc:
            raise _Skip(str(exc)) from None
        except WasmError as exc:
            raise _Fail(f"expected malformed ({expected}), got {type(exc).__name__}: {exc}") from None
        raise _Fail(f"expected malformed ({expected}), but the module decoded and validated")

    def text_malformed(self, cmd: dict) -> str:
        """A text-format module that must not parse.  hwsim reads text through wasm-tools (the same
        tool that converts the scripts); a module it accepts must then be malformed binary to hwsim."""
        filename = cmd.get("filename")
        if filename is None:
            raise _Fail("command names no module file")
        source = self.script.module_path(filename)
        verdict = source.with_name(source.name + ".parsed")  # cached beside the converted module
        if verdict.exists():
            binary = verdict.read_bytes() or None
        else:
            out = subprocess.run([find_wasm_tools(), "parse", str(source)], capture_output=True)  # binary to stdout
            binary = out.stdout if out.returncode == 0 else None
            try:
                verdict.write_bytes(binary or b"")
            except OSError:
                pass
        if binary is None:
            return TEXT_REJECTED
        try:
            self.load(binary)
        except MalformedError:
            return ""
        except WasmError as exc:
            raise _Fail(
                f"expected malformed text, wasm-tools parsed it and hwsim says {type(exc).__name__}: {exc}"
            ) from None
        raise _Fail("expected malformed text, but wasm-tools parsed it and the module decoded and validated")

    def cmd_assert_invalid(self, cmd: dict) -> str:
        data = self.binary_of(cmd)
        expected = cmd.get("text", "")
        try:
            self.load(data)
        except InvalidError as exc:
            if exc.reason.startswith(expected):
                return ""
            raise _Fail(
                f"invalid as expected, but the reason {exc.reason!r} does not start with {expected!r}"
            ) from None
        except UnsupportedFeatureError as exc:
            raise _Skip(str(exc)) from None
        except WasmError as exc:
            raise _Fail(f"expected invalid ({expected}), got {type(exc).__name__}: {exc}") from None
        raise _Fail(f"expected invalid ({expected}), but the module validated")

    def cmd_assert_unlinkable(self, cmd: dict) -> str:
        return self._assert_not_instantiated(cmd, LinkError)

    def cmd_assert_uninstantiable(self, cmd: dict) -> str:
        return self._assert_not_instantiated(cmd, Trap)

    def _assert_not_instantiated(self, cmd: dict, error: type[EngineError]) -> str:
        module, data = self.load_valid(cmd)
        expected = cmd.get("text", "")
        try:
            self.instantiate(module, data)
        except error as exc:
            return self._check_reason(exc, expected)
        except NotSupportedByEngine:
            raise
        except EngineError as exc:
            raise _Fail(f"expected {error.__name__} ({expected}), got {type(exc).__name__}: {exc}") from None
        raise _Fail(f"expected {error.__name__} ({expected}), but the module instantiated")

    @staticmethod
    def _check_reason(exc: EngineError, expected: str) -> str:
        for reason in exc.reasons:
            if reason and (reason.startswith(expected) or expected.startswith(reason)):
                return ""
        raise _Fail(f"{type(exc).__name__} as expected, but {exc.reason!r} does not match {expected!r}")

    # Actions ------------------------------------------------------------------------

    def perform(self, action: dict, check=None) -> list[Value]:
        """Run an action; ``check()`` runs once the module is known to be available (to parse expectations)."""
        instance = self.instance_of(action.get("module"))
        if check is not None:
            check()
        kind = action.get("type")
        field_name = action.get("field", "")
        if kind == "invoke":
            try:
                args = [parse_value(a) for a in action.get("args", [])]
            except UnsupportedValue as exc:
                raise _Skip(f"argument outside hwsim's scope: {exc}") from None
            return list(self.engine.invoke(instance, field_name, args))
        if kind == "get":
            return [self.engine.get(instance, field_name)]
        raise _Skip(f"action type {kind} is not supported by the runner")

    @staticmethod
    def expectations(cmd: dict) -> list:
        try:
            return [parse_expected(e) for e in cmd.get("expected", [])]
        except UnsupportedValue as exc:
            raise _Skip(f"expected result outside hwsim's scope: {exc}") from None

    def cmd_action(self, cmd: dict) -> str:
        try:
            self.perform(cmd["action"])
        except (Trap, Exhaustion, Thrown) as exc:
            raise _Fail(f"action failed: {type(exc).__name__}: {exc}") from None
        return ""

    def cmd_assert_return(self, cmd: dict) -> str:
        expected: list = []
        try:
            actual = self.perform(cmd["action"], check=lambda: expected.extend(self.expectations(cmd)))
        except (Trap, Exhaustion, Thrown) as exc:
            raise _Fail(f"expected {_show(expected)}, got {type(exc).__name__}: {exc}") from None
        if not results_match(expected, actual):
            raise _Fail(f"expected {_show(expected)}, got {_show(actual)}")
        return ""

    def cmd_assert_trap(self, cmd: dict) -> str:
        expected = cmd.get("text", "")
        try:
            actual = self.perform(cmd["action"])
        except Trap as exc:
            return self._check_reason(exc, expected)
        except Exhaustion as exc:
            raise _Fail(f"expected trap ({expected}), got exhaustion: {exc}") from None
        except Thrown as exc:
            raise _Fail(f"expected trap ({expected}), got an uncaught exception: {exc}") from None
        raise _Fail(f"expected trap ({expected}), got {_show(actual)}")

    def cmd_assert_exhaustion(self, cmd: dict) -> str:
        expected = cmd.get("text", "")
        try:
            actual = self.perform(cmd["action"])
        except Exhaustion as exc:
            return self._check_reason(exc, expected)
        except Trap as exc:
            raise _Fail(f"expected exhaustion ({expected}), got trap: {exc}") from None
        except Thrown as exc:
            raise _Fail(f"expected exhaustion ({expected}), got an uncaught exception: {exc}") from None
        raise _Fail(f"expected exhaustion ({expected}), got {_show(actual)}")

    def cmd_assert_exception(self, cmd: dict) -> str:
        try:
            actual = self.perform(cmd["action"])
        except Thrown:
            return ""
        except (Trap, Exhaustion) as exc:
            raise _Fail(f"expected an uncaught exception, got {type(exc).__name__}: {exc}") from None
        raise _Fail(f"expected an uncaught exception, got {_show(actual)}")


def _show(values: list) -> str:
    return "[" + ", ".join(str(v) for v in values) + "]"
