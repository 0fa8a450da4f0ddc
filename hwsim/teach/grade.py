"""Grading a folder of answer files against the course's keys (``hwsim quiz grade``).

A submission is the file ``ID.txt`` (or ``ID.json``) of a student on the
roster: the roster, not the file's ``student:`` line, says whose key grades
it, so a file cannot claim another student's key; a ``student:`` or
``sheet:`` line that disagrees is reported as a mismatch.  Each part is
right or wrong after normalising (numbers in any base, entries in any
order); a question scores the share of its parts that are right.  A file
that cannot be read, or a line that cannot be understood, is reported with
its file and line; the rest of the file is still graded.

    answers (text)                    answers (JSON)
    student: alice                    {"student": "alice", "sheet": "1a2b3c4d",
    sheet: 1a2b3c4d                    "answers": {"1.pa": "0x80003ff8", ...}}
    1.pa: 0x80003ff8
    1.level: 0
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError
from .course import COURSE_FORMAT, KEY_FORMAT, QUIZZES, VERSION

_NUMERIC = {"level", "cause", "iotval", "faults", "more", "write-backs", "victim"}
_LINE = re.compile(r"\s*(\d+)\.([A-Za-z0-9_-]+)\s*:(.*)")


class AnswerError(ValueError):
    """A value that cannot be read as an answer of its part (reported, counted wrong)."""


def _number(text: str) -> int:
    text = text.replace("_", "")
    try:
        return int(text, 10) if text.isdigit() else int(text, 0)  # decimal may have leading zeros
    except ValueError:
        raise AnswerError(f"{text!r} is not a number (hex 0x..., or decimal)") from None


def _entries(text: str) -> frozenset:
    """TLB entries ``A1:0x161000 G:0x...`` (commas or spaces between) as a set of (tag, va)."""
    out = set()
    for word in text.replace(",", " ").split():
        tag, sep, va = word.partition(":")
        if not sep or tag.upper() not in ("G", "A1", "A2"):
            raise AnswerError(f"{word!r} is not a TLB entry (A1:0x161000, A2:..., G:...)")
        out.add((tag.upper(), _number(va.split("/", 1)[0])))
    return frozenset(out)


def normalise(quiz: str, part: str, text: str) -> object:
    """An answer (or an expected value) in a form that compares equal when the two mean the same."""
    text = text.strip()
    low = text.lower()
    if low in ("none", "-"):
        return None
    if quiz == "tlb":
        words = low.replace(",", " ").split()
        for filler in ("removes", "evicts"):
            if filler in words:
                words.remove(filler)
        if part.startswith("step") and words[:1] == ["hit"]:
            if len(words) > 1:
                raise AnswerError(f"{text!r}: a hit evicts nothing: write 'hit' alone")
            return "hit"
        if part.startswith("step") and words[:1] == ["miss"]:
            rest = words[1:]
            return ("miss", None if rest in ([], ["none"]) else _entries(" ".join(rest)))
        if not words or words == ["none"]:
            return None
        return _entries(" ".join(words))
    if part == "pa":
        if low == "fault":
            return "fault"
        return tuple(_number(w) for w in low.replace(",", " ").split())
    if part == "rewrite":
        words = low.replace(",", " ").replace("->", " ").split()
        if len(words) != 2:
            raise AnswerError(f"{text!r}: give the PTE's address and its new value, or 'none'")
        return tuple(_number(w) for w in words)
    if part in _NUMERIC:
        return _number(low)
    if part == "reason":
        return low.replace("_", "-")
    if part in ("error", "fsc"):
        return "gp" if low in ("gp", "#gp", "#gp(0)") else _number(low)
    if part in ("fault", "entry"):
        return low.replace("_", "-").replace(" ", "-")
    if part == "queued":
        if low not in ("yes", "no"):
            raise AnswerError(f"{text!r}: 'yes', 'no' or 'none'")
        return low
    return low


@dataclass
class Submission:
    """What one file holds: the claimed student and sheet, and ``{"1.pa": (line, text)}``."""

    path: str
    student: str | None = None
    sheet: str | None = None
    answers: dict[str, tuple[int, str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def read_text_answers(path: str, text: str) -> Submission:
    sub = Submission(path)
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        head, sep, value = line.partition(":")
        if sep and head.strip().lower() in ("student", "sheet"):
            setattr(sub, head.strip().lower(), value.strip())
            continue
        m = _LINE.fullmatch(line)
        if not m:
            sub.problems.append(f"{path}:{n}: expected 'QUESTION.PART: ANSWER' (e.g. '1.pa: 0x80003ff8'), not {line!r}")
            continue
        name = f"{int(m[1])}.{m[2].lower()}"
        if name in sub.answers:
            sub.problems.append(f"{path}:{n}: {name} answered twice (first on line {sub.answers[name][0]})")
            continue
        sub.answers[name] = (n, m[3].strip())
    return sub


def read_json_answers(path: str, text: str) -> Submission:
    sub = Submission(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        sub.problems.append(f"{path}:{exc.lineno}: not JSON: {exc.msg} (column {exc.colno})")
        return sub
    if not isinstance(data, dict) or not isinstance(data.get("answers"), dict):
        sub.problems.append(f'{path}:1: expected {{"student": ..., "sheet": ..., "answers": {{"1.pa": ..., ...}}}}')
        return sub
    for key in ("student", "sheet"):
        if data.get(key) is not None:
            setattr(sub, key, str(data[key]))
    lines = text.splitlines()
    for name, value in data["answers"].items():
        line = next((i for i, t in enumerate(lines, 1) if f'"{name}"' in t), 1)
        m = re.fullmatch(r"(\d+)\.([A-Za-z0-9_-]+)", name)
        if not m or not isinstance(value, (str, int)) or isinstance(value, bool):
            sub.problems.append(f"{path}:{line}: {name!r}: expected a 'QUESTION.PART' name and a string or number")
            continue
        sub.answers[f"{int(m[1])}.{m[2].lower()}"] = (line, value if isinstance(value, str) else str(value))
    return sub


def read_submission(path: Path) -> Submission:
    name = os.fspath(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        sub = Submission(name)
        sub.problems.append(f"{name}: cannot read: {exc.strerror}")
        return sub
    # UTF-8, with or without a byte-order mark; UTF-16 with one (what some editors save).
    encoding = "utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        sub = Submission(name)
        line = data[: exc.start].count(b"\n") + 1
        sub.problems.append(f"{name}:{line}: not UTF-8 text (byte {exc.start})")
        return sub
    return read_json_answers(name, text) if path.suffix == ".json" else read_text_answers(name, text)


@dataclass
class PartResult:
    name: str  # "1.pa"
    expected: str
    given: str | None  # None: not answered
    right: bool
    hint: str  # what the expected value means, in one line
    why: list[str]  # the model's explanation
    diagnosis: str = ""  # where a wrong answer parted from the expected one, when that can be told


@dataclass
class StudentResult:
    student: str
    file: str | None
    questions: dict[int, list[PartResult]]
    problems: list[str]

    def question_score(self, number: int) -> float:
        parts = self.questions[number]
        return sum(p.right for p in parts) / len(parts)

    @property
    def score(self) -> float:
        return sum(self.question_score(n) for n in self.questions)


def grade_submission(key: dict, sub: Submission | None) -> StudentResult:
    student = key["student"]
    answers = dict(sub.answers) if sub else {}
    problems = list(sub.problems) if sub else []
    if sub is not None:
        if sub.student is not None and sub.student != student:
            problems.append(
                f"{sub.path}: says 'student: {sub.student}', but the file is {student}'s: graded with {student}'s key"
            )
        if sub.sheet is not None and sub.sheet != key["sheet"]:
            problems.append(f"{sub.path}: says 'sheet: {sub.sheet}', but {student}'s sheet is {key['sheet']}")
    questions: dict[int, list[PartResult]] = {}
    known = set()
    unreadable: list[tuple[int, str]] = []  # (line, problem), reported in line order
    for q in key["questions"]:
        results = []
        for part, expected in q["parts"].items():
            name = f"{q['number']}.{part}"
            known.add(name)
            line, given = answers.get(name, (0, None))
            right = False
            if given is not None and given.strip() != "?":
                try:
                    right = normalise(q["quiz"], part, given) == normalise(q["quiz"], part, expected)
                except AnswerError as exc:
                    unreadable.append((line, f"{sub.path if sub else student}:{line}: {name}: {exc}"))
            else:
                given = None
            result = PartResult(name, expected, given, right, q["hints"].get(part, ""), q["why"].get(part, []))
            if given is not None and not right and q["quiz"] == "mmu" and part == "pa":
                result.diagnosis = _diagnose_pa(given, expected, q["parts"]["level"])
            results.append(result)
        questions[q["number"]] = results
    for name, (line, _text) in answers.items():
        if name not in known:
            assert sub is not None  # answers come from a submission
            unreadable.append((line, f"{sub.path}:{line}: {name}: there is no such question part on {student}'s sheet"))
    problems += [problem for _line, problem in sorted(unreadable)]
    return StudentResult(student, sub.path if sub else None, questions, problems)


def _diagnose_pa(given: str, expected: str, level: str) -> str:
    """Which half of a wrong physical address is wrong: the frame (from the leaf's PPN) or the offset (from
    the VA), including the classic slip of taking a superpage's offset as 12 bits."""
    try:
        mine, theirs = normalise("mmu", "pa", given), normalise("mmu", "pa", expected)
    except AnswerError:
        return ""
    if not (isinstance(mine, tuple) and isinstance(theirs, tuple) and len(mine) == len(theirs) == 1):
        return ""  # a fault on either side, or several addresses: nothing to compare bit by bit
    bits = 12 + 9 * int(level)
    diff = mine[0] ^ theirs[0]
    offset = f"va[{bits - 1}:0]"
    if diff & ((1 << bits) - 1) == 0:
        return f"your offset ({offset}) is right, your frame is not: it is the leaf PTE's PPN"
    if bits > 12 and diff & 0xFFF == 0:
        return (
            f"your low 12 bits are right, but the leaf is a superpage: its offset is {offset}, "
            f"and only the PPN's bits above {bits - 1} name the frame"
        )
    if diff >> bits == 0:
        return f"your frame is right, your offset is not: it is {offset}"
    return "both the frame (the leaf PTE's PPN) and the offset are wrong"


def load_course(course_dir: str | os.PathLike) -> tuple[dict, dict[str, dict]]:
    """``course.json`` and every student's key."""
    root = Path(course_dir)

    def load(path: Path, fmt: str) -> dict:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read {os.fspath(path)!r}: {getattr(exc, 'strerror', None) or exc}") from None
        if not isinstance(data, dict) or data.get("format") != fmt or data.get("version") != VERSION:
            raise ConfigError(f"{os.fspath(path)!r} is not a {fmt} file of version {VERSION}")
        return data

    course = load(root / "course.json", COURSE_FORMAT)
    keys = {s: load(root / "keys" / f"{s}.json", KEY_FORMAT) for s in course["students"]}
    return course, keys


@dataclass
class Gradebook:
    course: dict
    results: list[StudentResult]
    unknown_files: list[str]  # answer files named for no student on the roster

    def question_numbers(self) -> list[int]:
        return sorted({n for r in self.results for n in r.questions})

    def csv_text(self) -> str:
        numbers = self.question_numbers()
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        total = len(numbers)
        w.writerow(["student", "file", "score", "out_of", *[f"q{n}" for n in numbers], "problems"])
        for r in self.results:
            w.writerow(
                [
                    r.student,
                    r.file or "",
                    _fmt(r.score),
                    total,
                    *[_fmt(r.question_score(n)) if n in r.questions else "" for n in numbers],
                    len(r.problems) if r.file else "no answers",
                ]
            )
        return out.getvalue()


def _fmt(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


def grade_folder(course_dir: str | os.PathLike, answers_dir: str | os.PathLike) -> Gradebook:
    course, keys = load_course(course_dir)
    folder = Path(answers_dir)
    if not folder.is_dir():
        raise ConfigError(f"answers folder {os.fspath(folder)!r} is not a directory")
    files: dict[str, list[Path]] = {}
    unknown = []
    for path in sorted(folder.iterdir()):
        if path.suffix not in (".txt", ".json") or not path.is_file():
            continue
        student = path.stem if path.stem in keys else path.stem.removesuffix("-answers")
        if student in keys:
            files.setdefault(student, []).append(path)
        else:
            unknown.append(os.fspath(path))
    results = []
    for student in course["students"]:
        paths = files.get(student, [])
        sub = read_submission(paths[0]) if paths else None
        result = grade_submission(keys[student], sub)
        for extra in paths[1:]:
            result.problems.append(f"{os.fspath(extra)}: a second file for {student}: not graded ({paths[0].name} was)")
        results.append(result)
    return Gradebook(course, results, unknown)


def feedback_lines(result: StudentResult) -> list[str]:
    """What a student reads back: each question's score, and for each part not right what was expected and
    why, from the model's explanation."""
    lines = [f"Feedback for {result.student}: {_fmt(result.score)} of {len(result.questions)}"]
    if result.file is None:
        lines.append("no answer file was found")
    for problem in result.problems:
        lines.append(f"  problem: {problem}")
    for number, parts in result.questions.items():
        right = sum(p.right for p in parts)
        lines.append(f"Question {number}: {right} of {len(parts)} parts right ({_fmt(right / len(parts))})")
        shown: list[list[str]] = []
        for p in parts:
            if p.right:
                continue
            given = "no answer" if p.given is None else f"you wrote {p.given!r}"
            lines.append(f"  {p.name}: expected {p.expected!r}, {given}")
            if p.hint:
                lines.append(f"    {p.hint}")
            if p.diagnosis:
                lines.append(f"    {p.diagnosis}")
            if p.why and p.why in shown:
                lines.append("      (the worked answer is above)")
            elif p.why:
                lines.extend("      " + line for line in p.why)
                shown.append(p.why)
    return lines


def summary_lines(book: Gradebook) -> list[str]:
    n = len(book.question_numbers())
    quizzes = ", ".join(f"{q['count']} {name}" for name, q in book.course["quizzes"].items() if name in QUIZZES)
    lines = [f"graded {sum(1 for r in book.results if r.file)} of {len(book.results)} students ({quizzes} questions)"]
    for r in book.results:
        lines.append(f"  {r.student:<16} {_fmt(r.score):>5} of {n}" + ("" if r.file else "  (no answer file)"))
    problems = [p for r in book.results for p in r.problems]
    problems += [f"{f}: not on the roster: not graded" for f in book.unknown_files]
    if problems:
        lines.append(f"{len(problems)} problem{'s' if len(problems) != 1 else ''}:")
        lines.extend(f"  {p}" for p in problems)
    return lines
