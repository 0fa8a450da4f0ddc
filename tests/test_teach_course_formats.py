"""x86-64 and AArch64 questions in graded courses (``hwsim quiz make --x86 K --arm K``): keys checked
against tests/spec_walk_x86.py and spec_walk_arm.py, and a folder of right, wrong and partly right
answers graded exactly."""

from __future__ import annotations

import csv
import json

from spec_walk_arm import spec_translate_arm
from spec_walk_x86 import spec_translate_x86

from hwsim.cli import main
from hwsim.riscv.priv import Priv
from hwsim.teach import arm_quiz, x86_quiz
from hwsim.teach.course import CoursePlan, student_questions
from hwsim.teach.grade import normalise

_FSC_WORDS = {0x0: "address-size", 0x4: "translation", 0x8: "access-flag", 0xC: "permission", 0x14: "external-abort"}


def test_keys_agree_with_the_transcriptions():
    plan = CoursePlan.build(course_seed=7, counts={"x86": 4, "arm": 4})
    checked = 0
    for n in range(60):
        for q in student_questions(plan, f"s{n}"):
            ex = q.exercise
            if q.quiz == "x86":
                c = ex.ctl
                want = spec_translate_x86(
                    ex.memory, x86_quiz.RAM_BASE, x86_quiz.RAM_SIZE, ex.cr3, ex.va, ex.access.value,
                    ex.priv is Priv.U, nxe=c.nxe, wp=c.wp, smep=c.smep, smap=c.smap, ac=c.ac, pke=c.pke,
                    pkru=c.pkru, maxphyaddr=c.maxphyaddr,
                )  # fmt: skip
                if want[0] == "ok":
                    assert q.parts["pa"] == hex(want[1]) and q.parts["error"] == "none"
                else:
                    assert q.parts["pa"] == "fault"
                    assert q.parts["error"] == ("gp" if want[0] == "gp" else hex(want[1]))
            else:
                c = ex.ctl
                want = spec_translate_arm(
                    ex.memory, arm_quiz.RAM_BASE, arm_quiz.ram_size(ex.granule), 4, ex.va, ex.access.value,
                    ex.priv is Priv.U, ttbr0=c.ttbr0, ttbr1=c.ttbr1, t0sz=c.t0sz, t1sz=c.t1sz, pa_bits=c.pa_bits,
                    ha=c.ha, wxn=c.wxn, pan=c.pan,
                )  # fmt: skip
                if want[0] == "ok":
                    assert q.parts["pa"] == hex(want[1]) and q.parts["fsc"] == "none"
                else:
                    assert q.parts["fsc"] == hex(want[1]) and q.parts["level"] == str(want[1] & 3)
                    assert q.parts["fault"] == _FSC_WORDS[want[1] & ~3]
            for part, value in q.parts.items():
                assert normalise(q.quiz, part, value) == normalise(q.quiz, part, value.upper())
            checked += 1
    assert checked == 480


def test_a_folder_of_x86_and_arm_answers_is_graded_exactly(tmp_path, capsys):
    (tmp_path / "roster.txt").write_text("ann\nben\ncat\n")
    out = tmp_path / "course"
    args = ["quiz", "make", "--roster", str(tmp_path / "roster.txt"), "--out", str(out), "--course-seed", "31"]
    assert main([*args, "--mmu", "0", "--tlb", "0", "--iommu", "0", "--x86", "2", "--arm", "2"]) == 0
    sheet = (out / "sheets" / "ann.txt").read_text()
    assert "x86-64 questions, parts:" in sheet and "AArch64 questions, parts:" in sheet
    assert "Question 1: x86-64 paging" in sheet and "Question 4: AArch64 translation" in sheet
    form = (out / "sheets" / "ann-answers.txt").read_text()
    assert "1.error: ?" in form and "3.fsc: ?" in form
    answers = tmp_path / "answers"
    answers.mkdir()
    for student in ("ann", "ben", "cat"):
        k = json.loads((out / "keys" / f"{student}.json").read_text())
        lines = [f"student: {student}", f"sheet: {k['sheet']}"]
        for q in k["questions"]:
            for part, value in q["parts"].items():
                if student == "ann":  # right, written differently
                    given = value.upper()
                elif student == "ben":  # wrong everywhere
                    given = {"pa": "0x1" if value == "fault" else "fault", "entry": "pml5e", "error": "0x7f",
                             "level": "9", "fault": "domain", "fsc": "0x3f"}[part]  # fmt: skip
                else:  # cat: only the PA right
                    given = value if part == "pa" else ("none" if value != "none" else "0x3f")
                lines.append(f"{q['number']}.{part}: {given}")
        (answers / f"{student}.txt").write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert main(["quiz", "grade", str(out), str(answers)]) == 0
    printed = capsys.readouterr().out
    assert "graded 3 of 3 students" in printed
    rows = {row["student"]: row for row in csv.DictReader((out / "gradebook.csv").open())}
    assert rows["ann"]["score"] == "4" and rows["ben"]["score"] == "0"
    # cat: one part of three right on each x86 question, one of four on each AArch64 question
    assert abs(float(rows["cat"]["score"]) - (2 / 3 + 2 / 4)) < 0.06, rows["cat"]
    feedback = (out / "feedback" / "ben.txt").read_text()
    assert "expected" in feedback and ("#PF" in feedback or "abort" in feedback or "translates" in feedback)
