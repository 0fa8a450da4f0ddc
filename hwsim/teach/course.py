"""Graded exercise sets for a course (``hwsim quiz make``): a roster in, a sheet and a key per student out.

Each student's exercises come from their own seed, derived from the course
seed and the student id (``student_seed``), so two students get different
exercises and the teacher can rebuild any set; the course seed stays with the
teacher (``course.json``), and the sheets print no seed.  A question is one
exercise of the MMU, TLB or IOMMU quiz; its answer has *parts* (``pa``,
``cause``, ... or a TLB step), each graded on its own (``hwsim.teach.grade``).

    OUT/course.json            course seed, quizzes, topics, roster (the teacher's)
    OUT/sheets/ID.txt          the student's questions and how to answer
    OUT/sheets/ID-answers.txt  the answer form, every part listed, to fill in
    OUT/keys/ID.txt            the answers with worked solutions (the teacher's)
    OUT/keys/ID.json           the parts' expected values and their explanations, read by grade

Every expected value is the model's (walker, TLB, IOMMU), as in the quizzes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from . import topics as quiz_topics

COURSE_FORMAT = "hwsim-quiz-course"
KEY_FORMAT = "hwsim-quiz-key"
VERSION = 1
QUIZZES = ("mmu", "tlb", "iommu")
MAX_QUESTIONS = 50
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

# Difficulty chooses each quiz's topics (unless the teacher names topics); "hard" is every topic.
DIFFICULTY = {
    "easy": {
        "mmu": ["page", "superpage", "invalid", "permission"],
        "tlb": ["lru"],
        "iommu": ["translate", "superpage", "stray", "permission"],
    },
    "medium": {
        "mmu": ["page", "superpage", "invalid", "permission", "no-leaf", "misaligned", "user", "mxr", "accessed-dirty"],
        "tlb": ["lru", "asid", "sfence"],
        "iommu": ["translate", "superpage", "stray", "permission", "crossing", "accessed-dirty", "bare"],
    },
    "hard": {"mmu": list(quiz_topics.MMU), "tlb": list(quiz_topics.TLB), "iommu": list(quiz_topics.IOMMU)},
}

# The parts of a question of each quiz, and what the answer form says about them.
MMU_PARTS = {
    "pa": "the physical address, or 'fault'",
    "level": "the level of the leaf PTE (2, 1 or 0), or where the walk stops; 'none' if it reads no PTE",
    "cause": "the exception's cause code, or 'none'",
    "reason": "why it faults: one of the reasons below, or 'none'",
    "rewrite": "the PTE the hardware rewrites, as 'ADDRESS NEW-VALUE', or 'none'",
}
IOMMU_PARTS = {
    "pa": "the physical address where each piece of the DMA starts (in IOVA order), or 'fault'",
    "cause": "the fault record's CAUSE, or 'none'",
    "iotval": "the fault record's iotval, or 'none'",
    "queued": "'yes' if the record is queued, 'no' if it is discarded (DTF=1), 'none' without a fault",
}


def reason_keyword(name: str) -> str:
    """``FaultReason.NOT_READABLE`` -> ``not-readable``."""
    return name.lower().replace("_", "-")


def student_seed(course_seed: int, student: str) -> int:
    """The student's 64-bit seed: the same course seed and id always give the same one."""
    digest = hashlib.sha256(f"hwsim-course:{course_seed}:{student}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def sheet_code(course_seed: int, student: str) -> str:
    """A short code printed on the sheet and copied into the answers: which sheet was answered."""
    return hashlib.sha256(f"hwsim-sheet:{course_seed}:{student}".encode()).hexdigest()[:8]


def read_roster(path: str | os.PathLike) -> list[str]:
    """Student ids, one a line (``id`` or ``id,name``; ``#`` comments and blank lines skipped)."""
    name = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read roster {name!r}: {getattr(exc, 'strerror', None) or exc}") from None
    ids: list[str] = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        student = line.split(",", 1)[0].strip()
        if not _ID.fullmatch(student):
            raise ConfigError(
                f"roster {name!r} line {n}: {student!r} is not a student id "
                "(letters, digits, '_', '.', '-'; at most 64; starting with a letter or digit)"
            )
        if student in ids:
            raise ConfigError(f"roster {name!r} line {n}: student {student!r} is listed twice")
        ids.append(student)
    if not ids:
        raise ConfigError(f"roster {name!r} lists no student")
    return ids


@dataclass(frozen=True)
class CoursePlan:
    """What every student gets: per quiz, how many questions and from which topics."""

    course_seed: int
    counts: dict[str, int]
    topics: dict[str, list[str]]
    difficulty: str

    @classmethod
    def build(
        cls, *, course_seed: int, counts: dict[str, int], difficulty: str = "hard", topics: Sequence[str] = ()
    ) -> CoursePlan:
        """``topics`` are ``QUIZ:TOPIC`` strings; a quiz named there takes those topics instead of the
        difficulty's."""
        if not 0 <= course_seed < 1 << 64:
            raise ConfigError(f"the course seed must be from 0 to 2^64-1, not {course_seed}")
        if difficulty not in DIFFICULTY:
            raise ConfigError(f"unknown difficulty {difficulty!r}; difficulties: {', '.join(DIFFICULTY)}")
        for quiz, count in counts.items():
            if not 0 <= count <= MAX_QUESTIONS:
                raise ConfigError(f"--{quiz} must be from 0 to {MAX_QUESTIONS} questions, not {count}")
        if not sum(counts.values()):
            raise ConfigError("no questions: give --mmu, --tlb or --iommu a count above 0")
        chosen: dict[str, list[str]] = {}
        for spec in topics:
            quiz, _, topic = spec.partition(":")
            known = getattr(quiz_topics, quiz.upper(), None) if quiz in QUIZZES else None
            if known is None or topic not in known:
                raise ConfigError(
                    f"--topic {spec!r}: give QUIZ:TOPIC, QUIZ one of {', '.join(QUIZZES)} and TOPIC one of its "
                    "topics (hwsim mmu quiz --help, hwsim mmu tlb-quiz --help, hwsim iommu quiz --help)"
                )
            chosen.setdefault(quiz, []).append(topic)
        picked = {q: chosen.get(q) or list(DIFFICULTY[difficulty][q]) for q in QUIZZES}
        return cls(course_seed, {q: counts.get(q, 0) for q in QUIZZES}, picked, difficulty)

    def to_json(self, students: list[str]) -> dict:
        return {
            "format": COURSE_FORMAT,
            "version": VERSION,
            "course_seed": self.course_seed,
            "difficulty": self.difficulty,
            "quizzes": {q: {"count": self.counts[q], "topics": self.topics[q]} for q in QUIZZES if self.counts[q]},
            "students": students,
        }


@dataclass(frozen=True)
class Question:
    """One question of a student's set: the exercise, the text a student sees, the expected parts."""

    number: int
    quiz: str
    exercise: object
    text: list[str]  # the exercise, without its seed
    parts: dict[str, str]  # part -> expected value, as the answer form writes it
    why: dict[str, list[str]]  # part -> the model's explanation of the expected value
    key_text: list[str]  # the quiz's worked answer
    hints: dict[str, str]  # part -> one line saying what the expected value means

    def to_json(self) -> dict:
        return {
            "number": self.number,
            "quiz": self.quiz,
            "topic": self.exercise.topic,  # type: ignore[attr-defined]
            "parts": self.parts,
            "hints": self.hints,
            "why": self.why,
        }


def _mmu_question(number: int, ex) -> Question:
    from ..mmu.bits import Pte
    from ..mmu.report import format_walk_explained
    from ..mmu.walker import LEVEL_NAMES, AdPolicy
    from . import mmu_quiz

    result = ex.solve()
    explained = format_walk_explained(result, satp=ex.satp)  # every step: a wrong part shows where it went wrong
    tr, f = result.translation, result.fault
    if tr is not None:
        size = LEVEL_NAMES[tr.level]
        rewrite = "none"
        rewrite_hint = "no PTE changes: " + (
            "A and D are already as the access needs them" if ex.ad is AdPolicy.UPDATE else "Svade never rewrites"
        )
        if result.ad_update is not None:
            addr, old, new = result.ad_update
            rewrite = f"{addr:#x} {new:#x}"
            rewrite_hint = f"the hardware sets A{' and D' if new & ~old & int(Pte.D) else ''} in the leaf at {addr:#x}"
        parts = {"pa": f"{tr.pa:#x}", "level": str(tr.level), "cause": "none", "reason": "none", "rewrite": rewrite}
        offset_bits = 12 + 9 * tr.level
        hints = {
            "pa": f"the access translates: a {size} whose frame is {tr.pa & ~((1 << offset_bits) - 1):#x}, "
            f"and va[{offset_bits - 1}:0] is the offset",
            "level": f"the leaf PTE is at level {tr.level} (a {size})",
            "cause": "no exception: the access translates",
            "reason": "no exception: the access translates",
            "rewrite": rewrite_hint,
        }
    else:
        assert f is not None  # a walk without a translation has a fault
        level = "none" if f.level is None else str(f.level)
        parts = {
            "pa": "fault",
            "level": level,
            "cause": str(int(f.cause)),
            "reason": reason_keyword(f.reason.name),
            "rewrite": "none",
        }
        where = "before reading any PTE" if f.level is None else f"at level {f.level}"
        hints = {
            "pa": f"the access does not translate: a {f.kind} {where}",
            "level": f"the walk stops {where}",
            "cause": f"cause {int(f.cause)} is a {ex.access.value} {f.kind}",
            "reason": f.message,
            "rewrite": "no PTE changes: the walk faults",
        }
    why = {part: explained for part in parts}
    text = mmu_quiz.format_exercise(ex)
    return Question(
        number,
        "mmu",
        ex,
        [f"Question {number}: Sv39 translation", *text[1:]],
        parts,
        why,
        mmu_quiz.format_answer(ex),
        hints,
    )


def _tlb_question(number: int, ex) -> Question:
    from . import tlb_quiz

    steps = ex.solve()
    parts: dict[str, str] = {}
    why: dict[str, list[str]] = {}
    hints: dict[str, str] = {}
    before = "(empty)"
    for n, step in enumerate(steps, 1):
        contents = " ".join(tlb_quiz.short_name(a, t) for a, t in step.entries) or "none"
        explained = [
            f"step {n}: {tlb_quiz.describe_op(step.op)}",
            f"  TLB before, LRU first: {before}",
        ]
        hints[f"step{n}"] = tlb_quiz.describe_step(step)  # what the step did: the hint line
        if step.op.kind == "access":
            if step.hit is not None:
                parts[f"step{n}"] = "hit"
            else:
                evicted = " ".join(tlb_quiz.short_name(a, t) for a, t in step.evicted) or "none"
                parts[f"step{n}"] = f"miss {evicted}"
            why[f"step{n}"] = explained
        elif step.op.kind == "sfence":
            parts[f"step{n}"] = " ".join(tlb_quiz.short_name(a, t) for a, t in step.removed) or "none"
            why[f"step{n}"] = explained
        before = contents.replace(" ", "  ") if contents != "none" else "(empty)"
    parts["final"] = " ".join(tlb_quiz.short_name(a, t) for a, t in steps[-1].entries) or "none"
    why["final"] = [f"the TLB after step {len(steps)}, LRU first: {before}"]
    text = tlb_quiz.format_exercise(ex)
    hints = {part: hint for part, hint in hints.items() if part in why}
    hints["final"] = "what the TLB holds after the last step"
    return Question(
        number, "tlb", ex, [f"Question {number}: a TLB", *text[1:]], parts, why, tlb_quiz.format_answer(ex), hints
    )


def _iommu_question(number: int, ex) -> Question:
    from . import iommu_quiz

    sol = ex.solve()
    answer = iommu_quiz.format_answer(ex)
    if sol.ok:
        parts = {
            "pa": " ".join(f"{pa:#x}" for pa, _n in sol.pieces),
            "cause": "none",
            "iotval": "none",
            "queued": "none",
        }
        why = {part: [answer[0].split(": ", 1)[1], *sol.walk_lines] for part in parts}
        pieces = "one piece" if len(sol.pieces) == 1 else f"{len(sol.pieces)} pieces, one a frame"
        hints = {
            "pa": f"the request is translated ({pieces}): {answer[0].split(': ', 1)[1]}",
            "cause": "no fault: the request is translated",
            "iotval": "no fault: the request is translated",
            "queued": "no fault: no record",
        }
    else:
        f = sol.fault
        assert f is not None  # a refused request has its fault
        cause, _ttyp, _did, iotval = iommu_quiz.fault_record_fields(f.to_record())
        parts = {"pa": "fault", "cause": str(cause), "iotval": f"{iotval:#x}", "queued": "yes" if f.queued else "no"}
        why = {part: [answer[0].split(": ", 1)[1], f"why: {f.reason}"] for part in parts}
        hints = {
            "pa": f"the IOMMU refuses the request: {f.reason}",
            "cause": f"CAUSE {cause}: {f.cause.describe}",
            "iotval": f"iotval is the IOVA the fault is about ({iotval:#x})",
            "queued": "the record is queued"
            if f.queued
            else "the context has DTF=1: the record is discarded, not queued",
        }
    text = iommu_quiz.format_exercise(ex)
    return Question(number, "iommu", ex, [f"Question {number}: IOMMU and DMA", *text[1:]], parts, why, answer, hints)


def make_question(quiz: str, number: int, ex) -> Question:
    """Question ``number`` on exercise ``ex`` of ``quiz`` (``mmu``, ``tlb``, ``iommu``): its parts, hints and the
    model's explanations, as a key holds them (the interactive quiz page checks answers against the same)."""
    return {"mmu": _mmu_question, "tlb": _tlb_question, "iommu": _iommu_question}[quiz](number, ex)


def student_questions(plan: CoursePlan, student: str) -> list[Question]:
    """The student's questions: MMU first, then TLB, then IOMMU, numbered from 1."""
    from . import iommu_quiz, mmu_quiz, tlb_quiz

    seed = student_seed(plan.course_seed, student)
    makers = {
        "mmu": (mmu_quiz, _mmu_question),
        "tlb": (tlb_quiz, _tlb_question),
        "iommu": (iommu_quiz, _iommu_question),
    }
    out: list[Question] = []
    for quiz in QUIZZES:
        module, question = makers[quiz]
        for n in range(1, plan.counts[quiz] + 1):
            out.append(question(len(out) + 1, module.make_exercise(seed, n, plan.topics[quiz])))
    return out


def answer_form(questions: list[Question], student: str, code: str) -> list[str]:
    """The file a student fills in: every part, with ``?`` for the answer."""
    lines = [
        "# hwsim quiz answers: replace each ? by your answer (format: see your sheet).",
        f"student: {student}",
        f"sheet: {code}",
    ]
    for q in questions:
        lines.append("")
        lines.append(f"# question {q.number} ({q.quiz})")
        lines.extend(f"{q.number}.{part}: ?" for part in q.parts)
    return lines


def _how_to_answer(questions: list[Question], student: str) -> list[str]:
    from ..mmu.walker import FaultReason

    quizzes = {q.quiz for q in questions}
    lines = [
        "How to answer",
        "",
        f"Fill in the answer form ({student}-answers.txt) and hand it in: one",
        "'QUESTION.PART: ANSWER' a line, '#' starts a comment.  Numbers in hex (0x...) or",
        "decimal.  Keep the 'student:' and 'sheet:' lines.  A JSON file works too:",
        '  {"student": "ID", "sheet": "CODE", "answers": {"1.pa": "0x80001234", ...}}',
        "Each part is graded on its own; a question's score is the share of its parts right.",
    ]
    if "mmu" in quizzes:
        lines += ["", "Sv39 questions, parts:"] + [f"  {p:<8} {what}" for p, what in MMU_PARTS.items()]
        reasons = ", ".join(reason_keyword(r.name) for r in FaultReason)
        lines += textwrap.wrap(reasons, 78, initial_indent="  reasons: ", subsequent_indent="           ")
    if "tlb" in quizzes:
        lines += [
            "",
            "TLB questions, parts (entries written as on the answer sheets of hwsim mmu tlb-quiz:",
            "A1:0x161000 for ASID 1's page 0x161000, G:0xffffffc000000000 for a global one,",
            "A2:0x40000000/2M for a 2 MiB superpage):",
            "  stepN    an access: 'hit', or 'miss' and the entry it evicts ('miss none' when",
            "           it fills a free entry or the walk faults); an sfence.vma: the entries",
            "           it removes, or 'none'",
            "  final    the TLB's entries at the end (any order), or 'none'",
        ]
    if "iommu" in quizzes:
        lines += ["", "IOMMU questions, parts:"] + [f"  {p:<8} {what}" for p, what in IOMMU_PARTS.items()]
    return lines


def sheet_lines(questions: list[Question], student: str, code: str) -> list[str]:
    from . import iommu_quiz, mmu_quiz

    rule = "=" * 78
    lines = [f"Exercises for {student} (sheet {code})", rule]
    lines += _how_to_answer(questions, student)
    quizzes = {q.quiz for q in questions}
    if "mmu" in quizzes:
        lines += [rule, *mmu_quiz.preamble()]
    if "iommu" in quizzes:
        lines += [rule, *iommu_quiz.preamble()]
    for q in questions:
        lines += [rule, *q.text]
        lines += textwrap.wrap(", ".join(f"{q.number}.{p}" for p in q.parts), 78, initial_indent="Parts: ")
    lines.append(rule)
    return lines


def key_lines(questions: list[Question], student: str, code: str, seed: int) -> list[str]:
    rule = "=" * 78
    lines = [f"Key for {student} (sheet {code}, student seed {seed})"]
    for q in questions:
        lines += [rule, f"Question {q.number} ({q.quiz}, topic {q.exercise.topic})"]  # type: ignore[attr-defined]
        lines += [f"  {q.number}.{part}: {value}" for part, value in q.parts.items()]
        lines += q.key_text
    lines.append(rule)
    return lines


def read_existing_course(out: str | os.PathLike) -> dict | None:
    """``OUT/course.json`` if ``out`` already holds a course, else None."""
    path = Path(out) / "course.json"
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read {os.fspath(path)!r}: {getattr(exc, 'strerror', None) or exc}") from None
    if (
        not isinstance(data, dict)
        or data.get("format") != COURSE_FORMAT
        or not isinstance(data.get("course_seed"), int)
    ):
        raise ConfigError(f"{os.fspath(path)!r} is not a {COURSE_FORMAT} file")
    return data


def make_course(plan: CoursePlan, students: list[str], out: str | os.PathLike, *, force: bool = False) -> list[Path]:
    """Write the course's files under ``out``; returns the paths written.

    A folder that holds another course (another seed, counts, topics or difficulty) is refused unless
    ``force``: the sheets already handed out would no longer match their keys.  The same course with a
    longer roster is fine (a student's set depends only on the course seed and their id).
    """
    root = Path(out)
    existing = read_existing_course(out)
    if existing is not None and not force:
        mine = {k: v for k, v in plan.to_json(students).items() if k != "students"}
        theirs = {k: v for k, v in existing.items() if k != "students"}
        if mine != theirs:
            raise ConfigError(
                f"{os.fspath(root / 'course.json')!r} holds another course (its seed, question counts, topics or "
                "difficulty differ): its keys would no longer match the sheets handed out; write to another "
                "folder, or give --force"
            )
    written: list[Path] = []

    def write(path: Path, text: str) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot write {os.fspath(path)!r}: {exc.strerror}") from None
        written.append(path)

    write(root / "course.json", json.dumps(plan.to_json(students), indent=1) + "\n")
    for student in students:
        questions = student_questions(plan, student)
        code = sheet_code(plan.course_seed, student)
        seed = student_seed(plan.course_seed, student)
        write(root / "sheets" / f"{student}.txt", "\n".join(sheet_lines(questions, student, code)) + "\n")
        write(root / "sheets" / f"{student}-answers.txt", "\n".join(answer_form(questions, student, code)) + "\n")
        write(root / "keys" / f"{student}.txt", "\n".join(key_lines(questions, student, code, seed)) + "\n")
        key = {
            "format": KEY_FORMAT,
            "version": VERSION,
            "student": student,
            "sheet": code,
            "questions": [q.to_json() for q in questions],
        }
        write(root / "keys" / f"{student}.json", json.dumps(key, indent=1) + "\n")
    return written
