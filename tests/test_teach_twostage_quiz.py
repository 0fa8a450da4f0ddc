"""hwsim.teach.twostage_quiz and ``hwsim mmu two-stage-quiz``: answers that agree with the generator's intent
and with the transcription in ``spec_walk_2stage.py``, computed from the text a student reads."""

from __future__ import annotations

import collections
import json
import re
import struct

import pytest
from spec_walk_2stage import spec_two_stage

from hwsim.cli import main
from hwsim.errors import ConfigError
from hwsim.mmu.twostage import Stage
from hwsim.teach.twostage_quiz import (
    RAM_BASE,
    RAM_SIZE,
    TOPICS,
    format_answer,
    format_exercise,
    make_exercise,
    make_quiz,
)

_WORD = re.compile(r"^    (0x[0-9a-f]+): (0x[0-9a-f]{16})$")
_ACCESS = re.compile(r"^access  = an? (?:instruction )?(fetch|load|store) at va (0x[0-9a-f]{16}), in V([US])-mode$")
_STATUS = re.compile(r"^status  : vsstatus.SUM=([01]) vsstatus.MXR=([01]) mstatus.MXR=([01])$")


def parse(lines: list[str]) -> dict:
    """What a student reads: the RAM words, vsatp, hgatp, the access, the status bits and the A/D rule."""
    ex: dict = {"memory": {}}
    for line in lines:
        if m := _WORD.match(line):
            ex["memory"][int(m[1], 16)] = int(m[2], 16)
        elif line.startswith("vsatp   = "):
            ex["vsatp"] = int(line.split("=")[1], 16)
        elif line.startswith("hgatp   = "):
            ex["hgatp"] = int(line.split("=")[1], 16)
        elif m := _ACCESS.match(line):
            ex["access"], ex["va"], ex["priv"] = m[1], int(m[2], 16), m[3]
        elif m := _STATUS.match(line):
            ex["sum"], ex["vs_mxr"], ex["mxr"] = (m[i] == "1" for i in (1, 2, 3))
        elif line.startswith("A/D     : "):
            ex["ad"] = "update" if "hardware sets" in line else "fault"
    return ex


def spec_answer(lines: list[str]) -> dict:
    ex = parse(lines)
    ram = bytearray(RAM_SIZE)
    for pa, value in ex["memory"].items():
        struct.pack_into("<Q", ram, pa - RAM_BASE, value)
    return spec_two_stage(
        ram,
        RAM_BASE,
        ex["vsatp"],
        ex["hgatp"],
        ex["va"],
        ex["access"],
        ex["priv"],
        ex["sum"],
        ex["mxr"],
        ex["vs_mxr"],
        ex["ad"],
    )


@pytest.mark.parametrize("topic", list(TOPICS))
def test_every_topic_does_what_it_was_built_for_and_agrees_with_the_transcription(topic):
    outcomes: collections.Counter = collections.Counter()
    for seed in range(300):
        ex = make_exercise(seed, 1, [topic])
        result = ex.solve()
        want = ex.intended
        where = (topic, seed)
        if want.stage is None:
            assert result.ok, (where, result.fault)
        else:
            f = result.fault
            assert f is not None and f.stage is want.stage, (where, f)
            if want.reason is not None:
                assert f.reason is want.reason, (where, f)
            if want.vs_level is not None:
                assert f.vs_level == want.vs_level, (where, f)
        spec = spec_answer(format_exercise(ex))
        assert spec["reads"] == result.pte_reads, (where, spec, result.pte_reads)
        if result.ok:
            assert (spec["result"], spec["pa"], spec["gpa"]) == ("ok", result.pa, result.gpa), where
        else:
            f = result.fault
            assert f is not None
            assert (spec["result"], spec["cause"], spec["stage"], spec["htval"]) == (
                "fault",
                int(f.cause),
                f.stage.name,
                f.htval,
            ), where
        outcomes["ok" if result.ok else result.fault.stage.name] += 1  # type: ignore[union-attr]
    assert sum(outcomes.values()) == 300


def test_reads_counted_for_the_plain_walk():
    counts = collections.Counter(make_exercise(seed, 1, ["translate"]).solve().pte_reads for seed in range(200))
    assert set(counts) == {15, 18}  # 18 when the VS leaf's A/D write walks the G-stage once more
    ex = make_exercise(1, 1, ["g-fault-pte"])
    assert ex.solve().fault is not None and ex.solve().fault.stage is Stage.G  # type: ignore[union-attr]


def test_same_seed_same_text():
    a = [format_exercise(e) + format_answer(e) for e in make_quiz(7, 4)]
    b = [format_exercise(e) + format_answer(e) for e in make_quiz(7, 4)]
    assert a == b


def test_unknown_topic_is_refused():
    with pytest.raises(ConfigError, match="unknown topic 'nope'"):
        make_exercise(1, 1, ["nope"])


def test_cli_prints_exercises_and_answers(capsys):
    assert main(["mmu", "two-stage-quiz", "--seed", "3", "--count", "2", "--solve"]) == 0
    out = capsys.readouterr().out
    assert out.count("Exercise ") == 2 and out.count("Answer ") == 2 and "PTE read" in out
    assert main(["mmu", "two-stage-quiz", "--seed", "3", "--json", "--solve", "--topic", "translate"]) == 0
    data = json.loads(capsys.readouterr().out)
    walk = data["exercises"][0]["walk"]
    assert walk["result"] == "ok" and walk["pte_reads"] in (15, 18) and walk["modes"] == {"vs": "Sv39", "g": "Sv39x4"}
