"""The WebAssembly spec-test runner: ``.wast`` scripts -> per-command outcomes, with a pluggable engine.

::

    .wast --wasm-tools json-from-wast--> commands + .wasm files   (wast.py, cached)
          --SpecTestRunner--> decode + validate (hwsim.wasm)      (runner.py)
                              instantiate / invoke / get          (engine.py: Engine protocol)
                              compare results, NaN patterns       (values.py)
"""

from .engine import (
    Engine,
    EngineError,
    Exhaustion,
    LinkError,
    NotSupportedByEngine,
    Thrown,
    Trap,
    ValidateOnlyEngine,
)
from .runner import FAILED, PASSED, SKIPPED, FileResult, Outcome, RunResult, SpecTestRunner, default_features
from .values import Either, NanPattern, RefPattern, UnsupportedValue, Value, matches, parse_expected, parse_value
from .wast import Script, WastError, find_wasm_tools, load_script

__all__ = [
    "Either",
    "Engine",
    "EngineError",
    "Exhaustion",
    "FAILED",
    "FileResult",
    "LinkError",
    "NanPattern",
    "NotSupportedByEngine",
    "Outcome",
    "PASSED",
    "RefPattern",
    "RunResult",
    "SKIPPED",
    "Script",
    "SpecTestRunner",
    "Thrown",
    "Trap",
    "UnsupportedValue",
    "ValidateOnlyEngine",
    "Value",
    "WastError",
    "default_features",
    "find_wasm_tools",
    "load_script",
    "matches",
    "parse_expected",
    "parse_value",
]
