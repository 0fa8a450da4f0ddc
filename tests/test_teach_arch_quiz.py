"""x86-64 and AArch64 quizzes (hwsim.teach.x86_quiz, arm_quiz): every exercise re-read from its
printed text and walked again by tests/spec_walk_x86.py or spec_walk_arm.py; the printed answer,
the generator's intent and the transcription agree."""

from __future__ import annotations

import re

import pytest
from spec_walk_arm import spec_translate_arm
from spec_walk_x86 import spec_translate_x86

from hwsim.teach import arm_quiz, x86_quiz

SEEDS_PER_FORMAT = 1500  # exercises per format: 3,000 x86-64, 4,500 AArch64

_WORD = re.compile(r"^    (0x[0-9a-f]+): (0x[0-9a-f]+)$", re.M)


def _words(text: str) -> dict:
    return {int(a, 16): int(v, 16) for a, v in _WORD.findall(text)}


def _one(pattern: str, text: str) -> str:
    m = re.search(pattern, text, re.M)
    assert m, pattern
    return m.group(1)


def _access(text: str) -> str:
    return {"an instruction fetch": "fetch", "a read": "load", "a write": "store"}[
        _one(r"^access +=\s+(an instruction fetch|a read|a write) at", text)
    ]


@pytest.mark.parametrize("fmt", ["x86-64", "x86-64-5level"])
def test_x86_quiz_answers_agree_with_the_sdm(fmt):
    topics_seen = set()
    for n in range(1, SEEDS_PER_FORMAT + 1):
        ex = x86_quiz.make_exercise(2026, n, fmt=fmt)
        text = "\n".join(x86_quiz.format_exercise(ex))
        controls = dict(re.findall(r"(CR0\.WP|EFER\.NXE|CR4\.SMEP|CR4\.SMAP|EFLAGS\.AC|CR4\.PKE)=(\d)", text))
        pkru = re.search(r"PKRU=(0x[0-9a-f]+)", text)
        want = spec_translate_x86(
            _words(text),
            x86_quiz.RAM_BASE,
            x86_quiz.RAM_SIZE,
            int(_one(r"^CR3 +=\s+(0x[0-9a-f]+)", text), 16),
            int(_one(r"^access .* at (0x[0-9a-f]+),", text), 16),
            _access(text),
            "CPL=3" in text,
            la57=fmt == "x86-64-5level",
            wp=controls["CR0.WP"] == "1",
            nxe=controls["EFER.NXE"] == "1",
            smep=controls["CR4.SMEP"] == "1",
            smap=controls["CR4.SMAP"] == "1",
            ac=controls["EFLAGS.AC"] == "1",
            pke=controls["CR4.PKE"] == "1",
            pkru=int(pkru.group(1), 16) if pkru else 0,
            maxphyaddr=int(_one(r"^MAXPHYADDR = (\d+)", text)),
        )
        result = ex.solve()
        answer = "\n".join(x86_quiz.format_answer(ex))
        if result.ok:
            assert want == ("ok", result.pa, {a: new for a, _old, new in result.updates}), (n, want)
            assert f"pa {result.pa:#x}" in answer
            assert ex.intended is None, (n, ex.topic, ex.intended)
        else:
            assert result.fault.reason == ex.intended.value, (n, ex.topic, result.fault.reason)
            if want[0] == "pf":
                assert result.fault.code == want[1], (n, want)
                assert f"error code {want[1]:#x}" in answer
            else:
                assert want == ("gp",) and "#GP" in answer, (n, want)
        topics_seen.add(ex.topic)
    assert topics_seen == set(x86_quiz.TOPICS)


@pytest.mark.parametrize("fmt", ["aarch64-4k", "aarch64-16k", "aarch64-64k"])
def test_arm_quiz_answers_agree_with_the_arm_arm(fmt):
    topics_seen = set()
    for n in range(1, SEEDS_PER_FORMAT + 1):
        ex = arm_quiz.make_exercise(2026, n, fmt=fmt)
        text = "\n".join(arm_quiz.format_exercise(ex))
        granule = ex.granule
        want = spec_translate_arm(
            _words(text),
            arm_quiz.RAM_BASE,
            arm_quiz.ram_size(granule),
            int(_one(r"frames of (\d+) KiB\)\.$", text)),
            int(_one(r"^access .* at (0x[0-9a-f]+),", text), 16),
            _access(text),
            "at EL0" in text,
            ttbr0=int(_one(r"TTBR0_EL1 = (0x[0-9a-f]+)", text), 16),
            ttbr1=int(_one(r"TTBR1_EL1 = (0x[0-9a-f]+)", text), 16),
            t0sz=int(_one(r"T0SZ=(\d+)", text)),
            t1sz=int(_one(r"T1SZ=(\d+)", text)),
            pa_bits=int(_one(r"IPS=(\d+)-bit", text)),
            ha=_one(r"HA=(\d)", text) == "1",
            wxn=_one(r"WXN=(\d)", text) == "1",
            pan=_one(r"PAN=(\d)", text) == "1",
        )
        result = ex.solve()
        answer = "\n".join(arm_quiz.format_answer(ex))
        if result.ok:
            af = (result.updates[0][0], result.updates[0][2]) if result.updates else None
            assert want == ("ok", result.pa, af), (n, ex.topic, want)
            assert f"pa {result.pa:#x}" in answer
            assert ex.intended is None, (n, ex.topic, ex.intended)
        else:
            assert want == ("abort", result.fault.code), (n, ex.topic, want, result.fault.code)
            assert result.fault.reason == ex.intended.value, (n, ex.topic, result.fault.reason)
            assert f"SC {want[1]:#04x}" in answer
        topics_seen.add(ex.topic)
    assert topics_seen == set(arm_quiz.TOPICS)


def test_quiz_exercises_depend_only_on_seed_number_format_and_topics():
    a = x86_quiz.make_quiz(99, 5, fmt="x86-64-5level")
    b = x86_quiz.make_quiz(99, 3, fmt="x86-64-5level")
    assert a[:3] == b
    assert arm_quiz.make_quiz(5, 2, ["pan"], fmt="aarch64-64k") == arm_quiz.make_quiz(5, 2, ["pan"], fmt="aarch64-64k")
    assert {ex.topic for ex in arm_quiz.make_quiz(5, 20, ["pan", "ap"])} == {"pan", "ap"}
