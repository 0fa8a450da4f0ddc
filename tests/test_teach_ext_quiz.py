"""hwsim.teach.ext_quiz and ``hwsim mmu ext-quiz``: answers that agree with the intent and with
``spec_walk_ext.py``, computed from the printed text."""

from __future__ import annotations

import collections
import json
import re
import struct

import pytest
from spec_walk_ext import spec_translate_ext

from hwsim.cli import main
from hwsim.teach.ext_quiz import RAM_BASE, RAM_SIZE, TOPICS, format_answer, format_exercise, make_exercise

_WORD = re.compile(r"^    (0x[0-9a-f]+): (0x[0-9a-f]{16})$")
_ACCESS = re.compile(r"^access  = an? (?:instruction )?(fetch|load|store) at va (0x[0-9a-f]{16}), in ([US])-mode$")
_EXT = re.compile(r"^ext     : Svnapot (on|off), Svpbmt (on|off); SUM=0 MXR=0$")


def spec_from_text(lines: list[str]) -> tuple:
    ram = bytearray(RAM_SIZE)
    for line in lines:
        if m := _WORD.match(line):
            struct.pack_into("<Q", ram, int(m[1], 16) - RAM_BASE, int(m[2], 16))
        elif line.startswith("satp    = "):
            satp = int(line.split("=")[1], 16)
        elif m := _ACCESS.match(line):
            access, va, priv = m[1], int(m[2], 16), m[3]
        elif m := _EXT.match(line):
            napot, pbmt = m[1] == "on", m[2] == "on"
    return spec_translate_ext(bytes(ram), RAM_BASE, satp, va, access, priv, False, False, napot, pbmt)


@pytest.mark.parametrize("topic", list(TOPICS))
def test_answers_agree_with_the_intent_and_the_transcription(topic):
    outcomes: collections.Counter = collections.Counter()
    for seed in range(1000):
        ex = make_exercise(seed, 1, [topic])
        result = ex.solve()
        assert result.ok is ex.intended_ok, (topic, seed, result.fault, result.steps)
        want = spec_from_text(format_exercise(ex))
        if result.ok:
            tr = result.translation
            assert tr is not None and want[:3] == ("ok", tr.pa, tr.page_size), (topic, seed)
            outcomes[f"ok-{tr.page_size:#x}"] += 1
        else:
            assert result.fault is not None and want == ("fault", int(result.fault.cause)), (topic, seed)
            outcomes[result.steps[-1].code if result.steps else "none"] += 1
    if topic == "sv57":
        assert {f"ok-{1 << (12 + 9 * level):#x}" for level in range(5)} <= set(outcomes), outcomes
    if topic == "napot":
        assert {"ok-0x10000", "napot_reserved", "reserved_bits"} <= set(outcomes), outcomes
    if topic == "pbmt":
        assert {"pbmt_reserved", "reserved_bits"} <= set(outcomes), outcomes


def test_cli(capsys):
    assert main(["mmu", "ext-quiz", "--seed", "2", "--count", "3", "--solve"]) == 0
    out = capsys.readouterr().out
    assert out.count("Answer ") == 3 and "Sv57" in out
    assert main(["mmu", "ext-quiz", "--seed", "2", "--json", "--solve", "--topic", "pbmt"]) == 0
    answer = json.loads(capsys.readouterr().out)["exercises"][0]["answer"]
    assert "memory type" in answer or "page fault" in answer
    assert format_answer(make_exercise(2, 1))[0].startswith("Answer 1: ")
