"""hwsim.teach.iommu_quiz and ``hwsim iommu quiz``: the model's answers against the generator's intent, the
specification's walk of the printed IO page tables, and the bytes actually moved; golden transcripts."""

from __future__ import annotations

import collections
import json
import re
import struct

import pytest
from golden import check_golden
from spec_walk import spec_translate

from hwsim.cli import main
from hwsim.iommu.bits import DC_SIZE, DDTE_PPN_SHIFT, ddi
from hwsim.mmu.bits import SV39, make_satp
from hwsim.teach.iommu_quiz import (
    RAM_BASE,
    TABLE_FRAMES,
    TOPICS,
    WINDOW,
    answer_line,
    fault_record_fields,
    format_answer,
    format_exercise,
    make_exercise,
    make_quiz,
)

_WORD = re.compile(r"^    (0x[0-9a-f]+): (0x[0-9a-f]{16})$")
_REQUEST = re.compile(r"^request = device (0x[0-9a-f]+) (reads|writes) (\d+) bytes at IOVA (0x[0-9a-f]+)$")


def parse(lines: list[str]) -> dict:
    ex = {"memory": {}}
    for line in lines:
        if m := _WORD.match(line):
            ex["memory"][int(m[1], 16)] = int(m[2], 16)
        elif line.startswith("ddtp    = "):
            ex["ddtp"] = int(line.split("= ")[1], 16)
        elif m := _REQUEST.match(line):
            ex["device_id"], ex["write"], ex["size"], ex["iova"] = (
                int(m[1], 16),
                m[2] == "writes",
                int(m[3]),
                int(m[4], 16),
            )
    assert set(ex) == {"memory", "ddtp", "device_id", "write", "size", "iova"}, ex
    return ex


def spec_pieces(p: dict):
    """Translate the printed request page by page with tests/spec_walk.py (U-mode); returns the pieces, or
    ("fault", cause, iova of the failing page).  Only for a valid Sv39 context.  The spec transcription sets
    A/D in hardware: with the context's SADE=0 a walk that needs an update is a page fault instead."""
    ram = bytearray(TABLE_FRAMES * 4096)  # the tables all live in the first frames of RAM
    for pa, value in p["memory"].items():
        struct.pack_into("<Q", ram, pa - RAM_BASE, value)
    ram = bytes(ram)
    levels = (p["ddtp"] & 0xF) - 1
    table = (p["ddtp"] >> DDTE_PPN_SHIFT & ((1 << 44) - 1)) << 12
    for level in range(levels - 1, 0, -1):
        table = (p["memory"][table + 8 * ddi(p["device_id"], level)] >> DDTE_PPN_SHIFT & ((1 << 44) - 1)) << 12
    context = table + DC_SIZE * ddi(p["device_id"], 0)
    fsc, sade = p["memory"][context + 24], p["memory"][context] >> 8 & 1
    satp = make_satp(SV39, fsc & ((1 << 44) - 1))
    va, end, pieces = p["iova"], p["iova"] + p["size"], []
    while va < end:
        r = spec_translate(ram, RAM_BASE, satp, va, "store" if p["write"] else "load", "U", False, False)
        if r[0] == "fault":
            return ("fault", r[1], va)
        if r[2] is not None and not sade:
            return ("fault", 15 if p["write"] else 13, va)
        n = min(end, (va | 0xFFF) + 1) - va  # page by page: contiguous runs are merged below
        if pieces and pieces[-1][0] + pieces[-1][1] == r[1]:
            pieces[-1] = (pieces[-1][0], pieces[-1][1] + n)
        else:
            pieces.append((r[1], n))
        va += n
    return tuple(pieces)


def check(ex) -> str:
    text, answer = format_exercise(ex), format_answer(ex)
    p = parse(text)
    # The printed exercise is the exercise.
    assert (p["memory"], p["ddtp"], p["device_id"], p["write"], p["size"], p["iova"]) == (
        ex.memory,
        ex.ddtp,
        ex.device_id,
        ex.write,
        ex.size,
        ex.iova,
    )
    sol = ex.solve()
    assert answer[0] == f"Answer {ex.number}: {answer_line(ex, sol)}"
    i = ex.intended
    if sol.ok:
        assert i.ok and sol.pieces == i.pieces, ex
        assert sol.verified, ex  # the model moved the bytes exactly where the worked solution says
        if ex.topic not in ("bare",):
            assert spec_pieces(p) == sol.pieces, ex
        return "ok"
    cause, ttyp, did, iotval = fault_record_fields(sol.fault.to_record())
    assert not i.ok and (cause, iotval, sol.fault.queued) == (int(i.cause), i.iotval, i.queued), ex
    assert (ttyp, did) == (3 if ex.write else 2, ex.device_id)
    if cause in (13, 15):  # a page fault: the spec's walk fails on the same page with the same cause
        assert spec_pieces(p) == ("fault", cause, iotval), ex
    for step in sol.fault.directory:  # every directory read the model made is in the worked solution
        assert f"{step.address:#x}" in "\n".join(answer), ex
    return str(cause) + ("" if sol.fault.queued else "-dtf")


def test_answers_agree_with_the_model_the_spec_and_the_bytes_on_thousands_of_cases():
    seen = collections.Counter()
    for topic in TOPICS:
        for seed in range(200):
            seen[check(make_exercise(seed, 1, [topic]))] += 1
    for seed in range(700):
        seen[check(make_exercise(seed, 2))] += 1
    assert sum(seen.values()) == 2500
    assert set(seen) == {"ok", "5", "7", "13", "15", "13-dtf", "15-dtf", "256", "258", "259", "260"}, seen


def test_not_ram_says_what_the_pte_points_at():
    """The not-ram topic's answer names a device window only when the leaf points into one: the printed tables,
    walked by the spec transcription, decide."""
    seen = collections.Counter()
    for seed in range(60):
        ex = make_exercise(seed, 1, ["not-ram"])
        ((pa, _n),) = spec_pieces(parse(format_exercise(ex)))
        assert not RAM_BASE <= pa < RAM_BASE + (8 << 20)
        topic = next(line for line in format_answer(ex) if line.startswith("Topic: "))
        if WINDOW <= pa < WINDOW + 0x1000:
            assert topic == "Topic: DMA translated to a device window (uart0's registers), not RAM", seed
        else:
            assert topic == "Topic: DMA translated to empty address space (neither RAM nor a device), not RAM", seed
        seen[topic] += 1
    assert len(seen) == 2, seen


def test_same_seed_same_exercise():
    assert make_quiz(3, 6)[5] == make_exercise(3, 6)
    assert all(e.topic == "crossing" for e in make_quiz(3, 5, ["crossing"]))


@pytest.mark.parametrize(
    "argv,golden",
    [
        (["--seed", "1", "--solve"], "iommu_quiz_seed1_solve.txt"),
        (["--seed", "2", "--count", "2"], "iommu_quiz_seed2.txt"),
        (
            ["--seed", "3", "--count", "2", "--topic", "directory", "--topic", "crossing", "--solve"],
            "iommu_quiz_seed3_topics_solve.txt",
        ),
    ],
)
def test_golden_transcripts(argv, golden, capsys):
    assert main(["iommu", "quiz", *argv]) == 0
    check_golden(golden, capsys.readouterr().out)


def test_json(capsys):
    assert main(["iommu", "quiz", "--seed", "6", "--count", "4", "--json", "--solve"]) == 0
    j = json.loads(capsys.readouterr().out)
    assert j["command"] == "hwsim iommu quiz --seed 6 --count 4"
    for e in j["exercises"]:
        assert ("pieces" in e) != ("fault" in e)
        if "fault" in e:
            assert e["fault"]["device_id"] == e["device_id"] and len(bytes.fromhex(e["record"])) == 32


def test_errors(capsys):
    assert main(["iommu", "quiz", "--seed", "1", "--count", "5000"]) == 2
    assert capsys.readouterr().err.strip() == "hwsim: error: --count must be from 1 to 1000, not 5000"
    with pytest.raises(SystemExit):
        main(["iommu", "quiz", "--topic", "dma"])
    assert "argument --topic: invalid choice: 'dma'" in capsys.readouterr().err
