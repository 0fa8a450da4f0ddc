"""hwsim.teach.course and hwsim.teach.grade (``hwsim quiz make`` / ``hwsim quiz grade``): a folder of right, partly
right, wrong and malformed answers graded exactly; seeds per student; keys agree with the quizzes' answers."""

from __future__ import annotations

import json

import pytest
from golden import check_golden

from hwsim.cli import main
from hwsim.errors import ConfigError
from hwsim.teach import iommu_quiz, mmu_quiz, tlb_quiz
from hwsim.teach.course import CoursePlan, read_roster, sheet_code, student_questions, student_seed
from hwsim.teach.grade import grade_folder, normalise

ROSTER = "# course 350, autumn\nalice,Alice Able\nbob\ncarol\ndave\nerin\nfrank\n"


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    (root / "roster.csv").write_text(ROSTER)
    assert main(["quiz", "make", "--roster", str(root / "roster.csv"), "--out", str(root / "out"),
                 "--course-seed", "2026"]) == 0  # fmt: skip
    return root / "out"


def key(course, student: str) -> dict:
    return json.loads((course / "keys" / f"{student}.json").read_text())


def right_answers(k: dict) -> dict[str, str]:
    return {f"{q['number']}.{part}": value for q in k["questions"] for part, value in q["parts"].items()}


def wrong(quiz: str, part: str, value: str) -> str:
    """An answer that is wrong for this part (and well formed)."""
    if quiz == "tlb":
        return "miss A2:0x1000" if value == "hit" else "hit" if part.startswith("step") else "G:0x5000"
    if part == "pa":
        return "0x1234" if value == "fault" else "fault"
    if part in ("level", "cause"):
        return "7" if value != "7" else "5"
    if part == "reason":
        return "invalid" if value != "invalid" else "no-leaf"
    if part == "iotval":
        return "0x1"
    if part == "queued":
        return "no" if value == "yes" else "yes"
    return "0x10 0x20" if value == "none" else "none"


def text_file(student: str, sheet: str, answers: dict[str, str]) -> str:
    return "\n".join([f"student: {student}", f"sheet: {sheet}", *(f"{n}: {v}" for n, v in answers.items())]) + "\n"


def test_a_folder_of_mixed_answers_is_graded_exactly(course, tmp_path, capsys):
    answers = tmp_path / "answers"
    answers.mkdir()
    # alice: everything right, written differently from the key (decimal, upper case, entries reordered).
    a = right_answers(key(course, "alice"))
    for name, value in a.items():
        if value.startswith("0x") and " " not in value:
            a[name] = str(int(value, 16))
        elif value.startswith("miss "):
            a[name] = "Miss, evicts " + value[5:].upper()
        elif ":" in value:
            a[name] = ", ".join(reversed(value.upper().split()))
    (answers / "alice.txt").write_text(text_file("alice", sheet_code(2026, "alice"), a))
    # bob, in JSON: question 1 right, question 2 with 3 parts of 5 right, the TLB question half right (every
    # other part), question 4 not answered.
    kb = key(course, "bob")
    b = {}
    for q in kb["questions"]:
        for i, (part, value) in enumerate(q["parts"].items()):
            name = f"{q['number']}.{part}"
            if q["number"] == 1 or (q["number"] == 2 and i < 3) or (q["number"] == 3 and i % 2 == 0):
                b[name] = value
            elif q["number"] != 4:
                b[name] = wrong(q["quiz"], part, value)
    (answers / "bob.json").write_text(json.dumps({"student": "bob", "sheet": kb["sheet"], "answers": b}, indent=1))
    # carol: every part wrong.
    kc = key(course, "carol")
    c = {f"{q['number']}.{p}": wrong(q["quiz"], p, v) for q in kc["questions"] for p, v in q["parts"].items()}
    (answers / "carol.txt").write_text(text_file("carol", kc["sheet"], c))
    # dave: claims to be alice and copies her answers but the TLB question's (whose steps differ), with
    # malformed lines; he is graded with his own key.
    d = {n: v for n, v in right_answers(key(course, "alice")).items() if not n.startswith("3.")}
    d_lines = text_file("alice", sheet_code(2026, "alice"), d).splitlines()
    d_lines[2:2] = ["this line is not an answer", "1.pa: 0x8zz", "9.pa: 0x1000", "1.level: 0"]
    (answers / "dave.txt").write_text("\n".join(d_lines) + "\n")
    # erin: JSON that does not parse; mallory: not on the roster; frank: no file.
    (answers / "erin.json").write_text('{"student": "erin",\n "answers": {"1.pa": 0x80}}\n')
    (answers / "mallory.txt").write_text(text_file("mallory", "00000000", d))

    book = grade_folder(course, answers)
    kd = key(course, "dave")
    graded = {**d, "1.level": "0"}  # the first answer to a part counts; 1.pa ("0x8zz") is not a number
    dave_right = {}  # alice's answers that happen to be right for dave's questions
    for q in kd["questions"]:
        n = 0
        for p, v in q["parts"].items():
            name = f"{q['number']}.{p}"
            if name in graded and name != "1.pa":
                n += normalise(q["quiz"], p, graded[name]) == normalise(q["quiz"], p, v)
        dave_right[q["number"]] = n / len(q["parts"])
    tlb_parts = len(kb["questions"][2]["parts"])
    bob_tlb = ((tlb_parts + 1) // 2) / tlb_parts
    got = {r.student: [round(r.question_score(n), 6) for n in sorted(r.questions)] for r in book.results}
    assert got == {
        "alice": [1, 1, 1, 1],
        "bob": [1, 0.6, round(bob_tlb, 6), 0],
        "carol": [0, 0, 0, 0],
        "dave": [round(dave_right[n], 6) for n in (1, 2, 3, 4)],
        "erin": [0, 0, 0, 0],
        "frank": [0, 0, 0, 0],
    }
    assert max(dave_right.values()) < 1  # alice's answers do not fit dave's questions
    problems = {r.student: r.problems for r in book.results}
    dave = str(answers / "dave.txt")
    assert problems["dave"] == [
        f"{dave}:3: expected 'QUESTION.PART: ANSWER' (e.g. '1.pa: 0x80003ff8'), not 'this line is not an answer'",
        f"{dave}:7: 1.pa answered twice (first on line 4)",
        f"{dave}:8: 1.level answered twice (first on line 6)",
        f"{dave}: says 'student: alice', but the file is dave's: graded with dave's key",
        f"{dave}: says 'sheet: {sheet_code(2026, 'alice')}', but dave's sheet is {kd['sheet']}",
        f"{dave}:4: 1.pa: '0x8zz' is not a number (hex 0x..., or decimal)",
        f"{dave}:5: 9.pa: there is no such question part on dave's sheet",
    ]
    assert problems["erin"] == [f"{answers / 'erin.json'}:2: not JSON: Expecting ',' delimiter (column 23)"]
    assert problems["alice"] == problems["bob"] == problems["carol"] == problems["frank"] == []
    assert book.unknown_files == [str(answers / "mallory.txt")]

    tlb = f"{bob_tlb:.2f}".rstrip("0").rstrip(".")
    d_total = f"{sum(dave_right.values()):.2f}".rstrip("0").rstrip(".")
    d_q = [f"{dave_right[n]:.2f}".rstrip("0").rstrip(".") for n in (1, 2, 3, 4)]
    bob_total = f"{1 + 0.6 + bob_tlb:.2f}".rstrip("0").rstrip(".")
    assert book.csv_text() == (
        "student,file,score,out_of,q1,q2,q3,q4,problems\n"
        f"alice,{answers / 'alice.txt'},4,4,1,1,1,1,0\n"
        f"bob,{answers / 'bob.json'},{bob_total},4,1,0.6,{tlb},0,0\n"
        f"carol,{answers / 'carol.txt'},0,4,0,0,0,0,0\n"
        f"dave,{dave},{d_total},4,{','.join(d_q)},7\n"
        f"erin,{answers / 'erin.json'},0,4,0,0,0,0,1\n"
        "frank,,0,4,0,0,0,0,no answers\n"
    )

    # The command writes the same gradebook, a feedback file per student, and a summary naming every problem.
    assert main(["quiz", "grade", str(course), str(answers), "--csv", str(tmp_path / "g.csv")]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "g.csv").read_text() == book.csv_text()
    # As docs/teaching.md shows it.
    assert out.replace(f"{tmp_path}/", "").splitlines()[:7] == [
        "graded 5 of 6 students (2 mmu, 1 tlb, 1 iommu questions)",
        "  alice                4 of 4",
        "  bob                2.1 of 4",
        "  carol                0 of 4",
        "  dave               0.4 of 4",
        "  erin                 0 of 4",
        "  frank                0 of 4  (no answer file)",
    ]
    assert "  frank                0 of 4  (no answer file)\n" in out
    assert "9 problems:\n" in out and f"  {answers / 'mallory.txt'}: not on the roster: not graded\n" in out
    feedback = (course / "feedback" / "carol.txt").read_text().splitlines()
    assert feedback[0] == "Feedback for carol: 0 of 4"
    assert feedback[1] == "Question 1: 0 of 5 parts right (0)"
    q1 = kc["questions"][0]
    assert feedback[2] == f"  1.pa: expected {q1['parts']['pa']!r}, you wrote {c['1.pa']!r}"
    assert feedback[3] == f"    {q1['hints']['pa']}"
    assert feedback[4:4 + len(q1["why"]["pa"])] == ["      " + line for line in q1["why"]["pa"]]  # fmt: skip
    assert feedback[4 + len(q1["why"]["pa"]):6 + len(q1["why"]["pa"])] == [
        f"  1.level: expected {q1['parts']['level']!r}, you wrote {c['1.level']!r}",
        f"    {q1['hints']['level']}",
    ]  # fmt: skip
    assert (course / "feedback" / "alice.txt").read_text() == (
        "Feedback for alice: 4 of 4\nQuestion 1: 5 of 5 parts right (1)\nQuestion 2: 5 of 5 parts right (1)\n"
        f"Question 3: {len(key(course, 'alice')['questions'][2]['parts'])} of "
        f"{len(key(course, 'alice')['questions'][2]['parts'])} parts right (1)\nQuestion 4: 4 of 4 parts right (1)\n"
    )
    assert "no answer file was found" in (course / "feedback" / "frank.txt").read_text()


def test_each_student_has_their_own_reproducible_set(course):
    plan = CoursePlan.build(course_seed=2026, counts={"mmu": 2, "tlb": 1, "iommu": 1})
    assert json.loads((course / "course.json").read_text()) == plan.to_json(
        ["alice", "bob", "carol", "dave", "erin", "frank"]
    )
    sheets = {s: (course / "sheets" / f"{s}.txt").read_text() for s in ("alice", "bob", "carol")}
    assert len(set(sheets.values())) == 3
    assert "seed" not in sheets["alice"]  # the sheet gives no seed to regenerate the answers from
    assert student_seed(2026, "alice") == student_seed(2026, "alice") != student_seed(2027, "alice")
    # The key's parts are the quizzes' own answers to the same exercises.
    seed = student_seed(2026, "alice")
    qs = student_questions(plan, "alice")
    assert [q.exercise for q in qs] == [
        mmu_quiz.make_exercise(seed, 1),
        mmu_quiz.make_exercise(seed, 2),
        tlb_quiz.make_exercise(seed, 1),
        iommu_quiz.make_exercise(seed, 1),
    ]
    assert (course / "keys" / "alice.txt").read_text().count("Worked solution:") == 3
    form = (course / "sheets" / "alice-answers.txt").read_text()
    assert f"student: alice\nsheet: {sheet_code(2026, 'alice')}\n" in form
    assert form.count(": ?\n") == sum(len(q.parts) for q in qs)


def test_the_sheet_and_key_of_one_student(tmp_path):
    (tmp_path / "roster.txt").write_text("s1\n")
    assert main(["quiz", "make", "--roster", str(tmp_path / "roster.txt"), "--out", str(tmp_path / "out"),
                 "--course-seed", "7", "--mmu", "1", "--tlb", "1", "--iommu", "1", "--difficulty", "easy"]) == 0  # fmt: skip
    check_golden("quiz_make_sheet_s1.txt", (tmp_path / "out" / "sheets" / "s1.txt").read_text())
    check_golden("quiz_make_key_s1.txt", (tmp_path / "out" / "keys" / "s1.txt").read_text())


def test_keys_agree_with_the_quiz_answers_on_many_students():
    """Every key part restates the model's answer: the quizzes' answer lines carry the same values."""
    plan = CoursePlan.build(course_seed=99, counts={"mmu": 3, "tlb": 1, "iommu": 3})
    for n in range(40):
        for q in student_questions(plan, f"s{n}"):
            answer = q.key_text[0]
            if q.quiz == "mmu":
                assert (q.parts["pa"] == "fault") == ("fault" in answer.split(":", 1)[1].split("(")[0]), answer
                if q.parts["pa"] != "fault":
                    assert f"pa {q.parts['pa']} " in answer
                else:
                    assert f"(cause {q.parts['cause']})" in answer
            elif q.quiz == "iommu":
                if q.parts["pa"] == "fault":
                    assert f"CAUSE={q.parts['cause']} " in answer and f"iotval={q.parts['iotval']}" in answer
                    assert ("not queued" in answer) == (q.parts["queued"] == "no")
                else:
                    assert all(f"pa {pa}-" in answer for pa in q.parts["pa"].split())
            else:
                steps = [line for line in q.key_text[1::2]]
                for part, value in q.parts.items():
                    if part.startswith("step"):
                        line = steps[int(part[4:]) - 1]
                        assert line.split(". ", 1)[1].startswith("hit" if value == "hit" else ("miss", "removes")), line


def test_bad_rosters_and_options_are_one_error():
    with pytest.raises(ConfigError, match=r"roster '/nonexistent' cannot be read|cannot read roster '/nonexistent'"):
        read_roster("/nonexistent")
    with pytest.raises(ConfigError, match="--topic 'mmu:nope': give QUIZ:TOPIC"):
        CoursePlan.build(course_seed=1, counts={"mmu": 1}, topics=["mmu:nope"])
    with pytest.raises(ConfigError, match="no questions"):
        CoursePlan.build(course_seed=1, counts={"mmu": 0, "tlb": 0, "iommu": 0})


def test_a_roster_line_that_is_not_an_id(tmp_path, capsys):
    (tmp_path / "r.txt").write_text("alice\nbob smith\n")
    assert main(["quiz", "make", "--roster", str(tmp_path / "r.txt"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"hwsim: error: roster '{tmp_path / 'r.txt'}' line 2: 'bob smith' is not a student id (letters, digits, "
        "'_', '.', '-'; at most 64; starting with a letter or digit)\n"
    )


def test_unreadable_files_and_values_are_reported_in_line_order(course, tmp_path):
    answers = tmp_path / "answers"
    answers.mkdir()
    ka = key(course, "alice")
    (answers / "alice.txt").write_bytes(b"student: alice\n1.pa: \xff\n")
    (answers / "bob.json").write_text("[1, 2]\n")
    (answers / "carol.txt").write_text("3.step1: hit A1:0x5\n1.rewrite: 0x1\n4.queued: maybe\n1.level: two\n")
    # Saved as UTF-16 (with its byte-order mark): read, and graded like any other file.
    (answers / "dave.txt").write_text(text_file("dave", key(course, "dave")["sheet"], right_answers(key(course, "dave"))),
                                      encoding="utf-16")  # fmt: skip
    book = grade_folder(course, answers)
    problems = {r.student: r.problems for r in book.results}
    carol = answers / "carol.txt"
    assert problems["alice"] == [f"{answers / 'alice.txt'}:2: not UTF-8 text (byte 21)"]
    assert problems["bob"] == [
        f'{answers / "bob.json"}:1: expected {{"student": ..., "sheet": ..., "answers": {{"1.pa": ..., ...}}}}'
    ]
    assert problems["carol"] == [
        f"{carol}:1: 3.step1: 'hit A1:0x5': a hit evicts nothing: write 'hit' alone",
        f"{carol}:2: 1.rewrite: '0x1': give the PTE's address and its new value, or 'none'",
        f"{carol}:3: 4.queued: 'maybe': 'yes', 'no' or 'none'",
        f"{carol}:4: 1.level: 'two' is not a number (hex 0x..., or decimal)",
    ]
    assert problems["dave"] == [] and book.results[3].score == 4
    assert book.results[0].score == book.results[2].score == 0
    assert len(ka["questions"]) == 4


def test_the_keys_own_answers_score_full_marks_and_wrong_ones_none(tmp_path):
    """On many students and every topic: the key's values, written back, are right; a wrong value in each part
    is wrong; numbers in decimal with leading zeros are numbers."""
    plan = CoursePlan.build(course_seed=5, counts={"mmu": 4, "tlb": 2, "iommu": 4})
    for n in range(25):
        for q in student_questions(plan, f"s{n}"):
            for part, value in q.parts.items():
                assert normalise(q.quiz, part, value) == normalise(q.quiz, part, value.upper()), (part, value)
                assert normalise(q.quiz, part, value) != normalise(q.quiz, part, wrong(q.quiz, part, value))
    assert normalise("mmu", "level", "002") == 2 and normalise("mmu", "pa", "0X10, 0x20") == (16, 32)


def test_make_keeps_a_course_and_refuses_to_replace_it(tmp_path, capsys):
    """Run again with a longer roster: the same seed (read from course.json), the first students' sets
    unchanged.  Another course in the same folder is refused (its keys would not match the sheets)."""
    roster, out = tmp_path / "r.txt", tmp_path / "out"
    roster.write_text("ann\n")
    assert main(["quiz", "make", "--roster", str(roster), "--out", str(out), "--mmu", "1"]) == 0
    sheet = (out / "sheets" / "ann.txt").read_text()
    seed = json.loads((out / "course.json").read_text())["course_seed"]
    roster.write_text("ann\nben\n")
    assert main(["quiz", "make", "--roster", str(roster), "--out", str(out), "--mmu", "1"]) == 0
    assert (out / "sheets" / "ann.txt").read_text() == sheet and (out / "sheets" / "ben.txt").exists()
    assert json.loads((out / "course.json").read_text())["course_seed"] == seed
    capsys.readouterr()
    assert main(["quiz", "make", "--roster", str(roster), "--out", str(out), "--mmu", "2"]) == 2
    assert capsys.readouterr().err == (
        f"hwsim: error: '{out / 'course.json'}' holds another course (its seed, question counts, topics or "
        "difficulty differ): its keys would no longer match the sheets handed out; write to another folder, or "
        "give --force\n"
    )
    assert (out / "sheets" / "ann.txt").read_text() == sheet
    assert main(["quiz", "make", "--roster", str(roster), "--out", str(out), "--mmu", "2", "--force"]) == 0
    assert json.loads((out / "course.json").read_text())["course_seed"] != seed


def test_the_answer_form_handed_back_as_it_was_named(course, tmp_path):
    """sheets/ID-answers.txt handed back under its own name is ID's; its '?' parts are unanswered, not errors."""
    answers = tmp_path / "answers"
    answers.mkdir()
    form = (course / "sheets" / "bob-answers.txt").read_text()
    k = key(course, "bob")
    form = form.replace("1.pa: ?", f"1.pa: {k['questions'][0]['parts']['pa']}")
    (answers / "bob-answers.txt").write_text(form)
    book = grade_folder(course, answers)
    bob = next(r for r in book.results if r.student == "bob")
    assert bob.file == str(answers / "bob-answers.txt") and bob.problems == []
    assert [p.name for p in bob.questions[1] if p.right] == ["1.pa"]
    assert sum(p.given is not None for parts in bob.questions.values() for p in parts) == 1


def test_tlb_keys_agree_with_the_plain_lru_model():
    """Each TLB part of the keys against tests/test_teach_tlb_quiz.py's list-based LRU TLB and the spec walker."""
    from test_teach_tlb_quiz import replay

    def entries(es) -> frozenset:
        return frozenset(("G" if e[0] == "G" else f"A{e[0]}", e[1]) for e in es)

    plan = CoursePlan.build(course_seed=11, counts={"mmu": 0, "tlb": 3, "iommu": 0})
    checked = 0
    for n in range(60):
        for q in student_questions(plan, f"s{n}"):
            outcomes = replay(q.exercise)
            expected = {}
            for step, r in enumerate(outcomes, 1):
                if r[0] == "hit":
                    expected[f"step{step}"] = "hit"
                elif r[0] == "fault":
                    expected[f"step{step}"] = ("miss", None)
                elif r[0] == "fill":
                    expected[f"step{step}"] = ("miss", entries(r[2]) or None)
                elif r[0] == "fence":
                    expected[f"step{step}"] = entries(r[1]) or None
            expected["final"] = entries(outcomes[-1][-1]) or None
            assert {p: normalise("tlb", p, v) for p, v in q.parts.items()} == expected
            checked += len(expected)
    assert checked > 2000


def test_mmu_keys_agree_with_the_spec_transcription_on_the_sheet():
    """Each Sv39 key, against tests/spec_walk.py on the exercise as the student's sheet prints it."""
    import struct

    from spec_walk import spec_translate
    from test_teach_mmu_quiz import parse

    from hwsim.mmu.walker import AdPolicy

    plan = CoursePlan.build(course_seed=12, counts={"mmu": 5, "tlb": 0, "iommu": 0})
    outcomes = set()
    for n in range(300):
        for q in student_questions(plan, f"s{n}"):
            p = parse(q.text)
            ram = bytearray(mmu_quiz.RAM_SIZE)
            for pa, value in p["memory"].items():
                struct.pack_into("<Q", ram, pa - mmu_quiz.RAM_BASE, value)
            spec = spec_translate(bytes(ram), mmu_quiz.RAM_BASE, p["satp"], p["va"], p["access"], p["priv"], p["sum"],
                                  p["mxr"])  # fmt: skip
            parts = q.parts
            if spec[0] == "ok" and not (spec[2] is not None and p["ad"] is AdPolicy.FAULT):
                assert parts["pa"] == f"{spec[1]:#x}" and parts["cause"] == parts["reason"] == "none", (n, q.number)
                assert parts["rewrite"] == "none" if spec[2] is None else parts["rewrite"].endswith(f" {spec[2]:#x}")
                outcomes.add("ok" if spec[2] is None else "ok-rewrite")
            else:  # a fault (Svade: the spec, which updates A/D, translates; the hardware faults instead)
                cause = spec[1] if spec[0] == "fault" else {"fetch": 12, "load": 13, "store": 15}[p["access"]]
                assert parts["pa"] == "fault" and parts["cause"] == str(cause) and parts["rewrite"] == "none"
                outcomes.add(f"fault {parts['reason']}")
    assert len(outcomes) >= 15, outcomes


def test_iommu_keys_agree_with_the_spec_transcription_on_the_sheet():
    """IOMMU keys of the topics with a valid Sv39 context, against tests/test_teach_iommu_quiz.py's page-by-page
    translation with tests/spec_walk.py on the exercise as the sheet prints it."""
    from test_teach_iommu_quiz import parse, spec_pieces

    topics = ["translate", "superpage", "stray", "crossing", "permission", "accessed-dirty"]
    plan = CoursePlan.build(
        course_seed=13, counts={"mmu": 0, "tlb": 0, "iommu": 6}, topics=[f"iommu:{t}" for t in topics]
    )
    seen = set()
    for n in range(100):
        for q in student_questions(plan, f"s{n}"):
            r = spec_pieces(parse(q.text))
            if r and r[0] == "fault":
                assert (q.parts["pa"], q.parts["cause"], q.parts["iotval"]) == ("fault", str(r[1]), f"{r[2]:#x}")
                seen.add(f"fault {r[1]}")
            else:
                assert q.parts == {"pa": " ".join(f"{pa:#x}" for pa, _n in r), "cause": "none", "iotval": "none",
                                   "queued": "none"}  # fmt: skip
                seen.add(f"{len(r)} pieces")
    assert {"1 pieces", "2 pieces", "fault 13", "fault 15"} <= seen, seen


def test_a_wrong_pa_says_whether_the_frame_or_the_offset_is_wrong():
    from hwsim.teach.grade import _diagnose_pa

    assert _diagnose_pa("0x80001234", "0x80002234", "0") == (
        "your offset (va[11:0]) is right, your frame is not: it is the leaf PTE's PPN"
    )
    assert _diagnose_pa("0x80002235", "0x80002234", "0") == "your frame is right, your offset is not: it is va[11:0]"
    assert _diagnose_pa("0x80200234", "0x80345234", "1") == (
        "your low 12 bits are right, but the leaf is a superpage: its offset is va[20:0], and only the PPN's bits "
        "above 20 name the frame"
    )
    assert (
        _diagnose_pa("0x90000000", "0x80000234", "0") == "both the frame (the leaf PTE's PPN) and the offset are wrong"
    )
    assert _diagnose_pa("fault", "0x80000234", "0") == _diagnose_pa("0x1", "fault", "2") == ""


def test_the_feedback_names_the_wrong_half_of_a_pa(course, tmp_path):
    """A pa with the right offset but another frame: the feedback says the frame is the wrong half."""
    from hwsim.teach.grade import feedback_lines

    answers = tmp_path / "answers"
    answers.mkdir()
    q = next(q for q in key(course, "alice")["questions"] if q["quiz"] == "mmu" and q["parts"]["pa"] != "fault")
    bits = 12 + 9 * int(q["parts"]["level"])
    given = f"{int(q['parts']['pa'], 16) ^ 1 << bits:#x}"  # another frame, the same offset
    (answers / "alice.txt").write_text(f"{q['number']}.pa: {given}\n")
    lines = feedback_lines(grade_folder(course, answers).results[0])
    i = lines.index(f"  {q['number']}.pa: expected {q['parts']['pa']!r}, you wrote {given!r}")
    assert lines[i + 1] == f"    {q['hints']['pa']}"
    assert lines[i + 2] == f"    your offset (va[{bits - 1}:0]) is right, your frame is not: it is the leaf PTE's PPN"
