"""hwsim.teach.mmu_quiz and ``hwsim mmu quiz``: golden transcripts, and answers that agree with the walker,
with the generator's intent and with the specification transcription, on the text a student reads."""

from __future__ import annotations

import collections
import json
import re
import struct

import pytest
from golden import check_golden
from spec_walk import spec_translate

from hwsim.cli import main
from hwsim.mmu.walker import AdPolicy, FaultReason, walk
from hwsim.riscv.priv import Access, Priv
from hwsim.teach import mmu_quiz
from hwsim.teach.mmu_quiz import (
    RAM_BASE,
    RAM_SIZE,
    TOPICS,
    QuizMemory,
    answer_line,
    format_answer,
    format_exercise,
    make_exercise,
    make_quiz,
)

_WORD = re.compile(r"^    (0x[0-9a-f]+): (0x[0-9a-f]{16})$")
_ACCESS = re.compile(r"^access  = an? (?:instruction )?(fetch|load|store) at va (0x[0-9a-f]{16}), in ([US])-mode$")


def parse(lines: list[str]) -> dict:
    """What a student reads: the RAM words, satp, the access, SUM/MXR and the A/D rule."""
    ex = {"memory": {}}
    for line in lines:
        if m := _WORD.match(line):
            ex["memory"][int(m[1], 16)] = int(m[2], 16)
        elif line.startswith("satp    = "):
            ex["satp"] = int(line.split("= ")[1], 16)
        elif m := _ACCESS.match(line):
            ex["access"], ex["va"], ex["priv"] = m[1], int(m[2], 16), m[3]
        elif line.startswith("sstatus : "):
            ex["sum"], ex["mxr"] = "SUM=1" in line, "MXR=1" in line
        elif line.startswith("A/D     : "):
            ex["ad"] = AdPolicy.FAULT if line.endswith("(Svade)") else AdPolicy.UPDATE
        elif line.startswith("The page tables live in RAM at "):
            assert line.startswith(f"The page tables live in RAM at {RAM_BASE:#x}-{RAM_BASE + RAM_SIZE - 1:#x}")
    assert set(ex) == {"memory", "satp", "access", "va", "priv", "sum", "mxr", "ad"}, ex
    return ex


def check_against_references(ex) -> str:
    """Walk the exercise as printed with the walker and the spec transcription; returns the outcome's name."""
    text = format_exercise(ex)
    answer = format_answer(ex)
    p = parse(text)
    root = (p["satp"] & ((1 << 44) - 1)) << 12
    result = walk(
        QuizMemory(p["memory"]),
        root,
        p["va"],
        Access(p["access"]),
        Priv[p["priv"]],
        sum=p["sum"],
        mxr=p["mxr"],
        ad=p["ad"],
    )
    # 1. The printed answer is the walker's, on the printed exercise (nothing hidden, nothing misprinted).
    assert answer[0] == f"Answer {ex.number}: {answer_line(result)}"
    # 2. The generator built what it meant to.
    i = ex.intended
    if result.ok:
        assert (i.reason, i.level, i.pa) == (None, result.translation.level, result.translation.pa), ex
    else:
        assert (i.reason, i.level) == (result.fault.reason, result.fault.level), ex
    # 3. The specification transcription agrees (it models hardware A/D updates, so Svade faults are its
    #    successful walks that need an update).
    ram = bytearray(RAM_SIZE)
    for pa, value in p["memory"].items():
        struct.pack_into("<Q", ram, pa - RAM_BASE, value)
    spec = spec_translate(bytes(ram), RAM_BASE, p["satp"], p["va"], p["access"], p["priv"], p["sum"], p["mxr"])
    if result.ok:
        new = result.ad_update[2] if result.ad_update else None
        assert spec == ("ok", result.translation.pa, new), ex
        return f"ok-level{result.translation.level}" + ("-ad" if new else "")
    if result.fault.reason in (FaultReason.ACCESSED_CLEAR, FaultReason.DIRTY_CLEAR):
        assert spec[0] == "ok" and spec[2] is not None and p["ad"] is AdPolicy.FAULT, ex
    else:
        assert spec == ("fault", int(result.fault.cause)), ex
    return result.fault.reason.name


def test_answers_agree_with_the_walker_and_the_spec_on_thousands_of_cases():
    seen = collections.Counter()
    cases = 0
    for topic in TOPICS:
        for seed in range(300):
            seen[check_against_references(make_exercise(seed, 1, [topic]))] += 1
            cases += 1
    for seed in range(1100):
        seen[check_against_references(make_exercise(seed, 2))] += 1
        cases += 1
    assert cases == 5000
    # Every way a walk can end, and every leaf size, is exercised.
    assert set(seen) >= {r.name for r in FaultReason} | {
        "ok-level0",
        "ok-level1",
        "ok-level2",
        "ok-level0-ad",
        "ok-level1-ad",
    }, seen


def test_exercises_depend_only_on_seed_and_number():
    assert make_quiz(5, 10)[3] == make_quiz(5, 4)[3] == make_exercise(5, 4)
    assert make_exercise(5, 4) != make_exercise(6, 4)
    assert all(e.topic == "mxr" for e in make_quiz(9, 20, ["mxr"]))


@pytest.mark.parametrize(
    "argv,golden",
    [
        (["--seed", "1", "--count", "4", "--solve"], "mmu_quiz_seed1_solve.txt"),
        (["--seed", "2"], "mmu_quiz_seed2.txt"),
        (
            ["--seed", "3", "--count", "2", "--topic", "misaligned", "--topic", "accessed-dirty", "--solve"],
            "mmu_quiz_seed3_topics_solve.txt",
        ),
    ],
)
def test_golden_transcripts(argv, golden, capsys):
    assert main(["mmu", "quiz", *argv]) == 0
    check_golden(golden, capsys.readouterr().out)


def test_json(capsys):
    assert main(["mmu", "quiz", "--seed", "4", "--count", "2", "--json"]) == 0
    j = json.loads(capsys.readouterr().out)
    assert j["command"] == "hwsim mmu quiz --seed 4 --count 2" and j["solved"] is False
    assert "answer" not in j["exercises"][0] and "topic" not in j["exercises"][0]
    assert main(["mmu", "quiz", "--seed", "4", "--count", "2", "--json", "--solve"]) == 0
    solved = json.loads(capsys.readouterr().out)
    ex = make_exercise(4, 1)
    first = solved["exercises"][0]
    assert first["answer"] == answer_line(ex.solve()) and first["topic"] == ex.topic
    assert first["memory"] == {hex(a): hex(v) for a, v in ex.memory.items()}
    assert first["walk"]["result"] in ("ok", "fault")


def test_without_a_seed_one_is_chosen_and_printed(capsys):
    assert main(["mmu", "quiz", "--count", "1"]) == 0
    out = capsys.readouterr().out
    seed = int(re.match(r"hwsim mmu quiz --seed (\d+) --count 1\n", out)[1])
    assert main(["mmu", "quiz", "--count", "1", "--seed", str(seed)]) == 0
    assert capsys.readouterr().out == out


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--seed", "-1"], "hwsim: error: --seed must be an integer from 0 to 2^64-1, not -1"),
        (
            ["--seed", str(1 << 64)],
            "hwsim: error: --seed must be an integer from 0 to 2^64-1, not 18446744073709551616",
        ),
        (["--seed", "1", "--count", "0"], "hwsim: error: --count must be from 1 to 1000, not 0"),
        (["--seed", "1", "--count", "1001"], "hwsim: error: --count must be from 1 to 1000, not 1001"),
    ],
)
def test_bad_seed_and_count(argv, message, capsys):
    assert main(["mmu", "quiz", *argv]) == 2
    assert capsys.readouterr().err.strip() == message


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--seed", "x"], "argument --seed: not an integer: 'x'"),
        (["--topic", "paging"], "argument --topic: invalid choice: 'paging'"),
    ],
)
def test_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(["mmu", "quiz", *argv])
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_unknown_topic_from_python():
    with pytest.raises(mmu_quiz.ConfigError, match="unknown topic 'x'; topics: page, superpage"):
        make_exercise(1, 1, ["x"])
