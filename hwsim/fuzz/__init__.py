"""Differential fuzzing of hwsim against wasmtime (the oracle) with modules from ``wasm-tools smith``.

::

    from hwsim.fuzz import check_module, run_campaign
    check_module(wasm_bytes, seed=0)          # -> Verdict("agree" | "divergence" | ...)
    run_campaign(count=1000, jobs=2, out_dir=Path("fuzz-out")).format()

``hwsim fuzz`` is the command line.  wasmtime is needed only here (it is a
test dependency, never a runtime one).  See docs/reliability.md.
"""

from .campaign import Summary, Verdict, check_module, run_campaign, shrink_case, verdict_key
from .smith import SMITH_FLAGS, FuzzError, generate

__all__ = [
    "SMITH_FLAGS",
    "FuzzError",
    "Summary",
    "Verdict",
    "check_module",
    "generate",
    "run_campaign",
    "shrink_case",
    "verdict_key",
]
