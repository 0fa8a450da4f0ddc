"""``hwsim quiz ...``: graded exercise sets for a course (make: sheets and keys from a roster; grade: a CSV)."""

from __future__ import annotations

import argparse
import os
import random


def register(sub: argparse._SubParsersAction) -> None:
    from . import int_arg

    quiz = sub.add_parser(
        "quiz", help="graded exercises for a course: a set per student from a roster, graded into a CSV"
    )
    quiz_sub = quiz.add_subparsers(dest="quiz_command", metavar="SUBCOMMAND", required=True)
    make = quiz_sub.add_parser(
        "make",
        help="write a sheet, an answer form and a key per student on a roster",
        description="Write each student's exercises (MMU, TLB, IOMMU and page-replacement questions from a seed "
        "derived from the course seed and the student id), an answer form, and a key with the models' worked answers.  "
        "OUT/course.json and OUT/keys/ are the teacher's; hand out OUT/sheets/ID.txt and ID-answers.txt.",
    )
    make.add_argument("--roster", required=True, help="student ids, one a line (id or id,name; # comments)")
    make.add_argument("--out", required=True, help="the folder to write (course.json, sheets/, keys/)")
    make.add_argument(
        "--course-seed",
        type=int_arg,
        help="0 to 2^64-1, kept secret: with the ids it decides every set (default: the seed of the course "
        "already in --out, or a random one; saved in course.json)",
    )
    make.add_argument("--mmu", type=int_arg, default=2, help="Sv39 translation questions per student (default 2)")
    make.add_argument("--tlb", type=int_arg, default=1, help="TLB questions per student (default 1)")
    make.add_argument("--iommu", type=int_arg, default=1, help="IOMMU questions per student (default 1)")
    make.add_argument("--replace", type=int_arg, default=0, help="page-replacement questions per student (default 0)")
    make.add_argument("--x86", type=int_arg, default=0, help="x86-64 4-level paging questions per student (default 0)")
    make.add_argument(
        "--arm", type=int_arg, default=0, help="AArch64 (4 KiB granule) translation questions per student (default 0)"
    )
    make.add_argument(
        "--difficulty",
        choices=["easy", "medium", "hard"],
        default="hard",
        help="which topics each quiz draws from: easy (the basics), medium, hard (every topic; the default)",
    )
    make.add_argument(
        "--topic",
        action="append",
        default=[],
        metavar="QUIZ:TOPIC",
        help="draw that quiz's questions from these topics only (repeatable; e.g. mmu:page, tlb:asid, "
        "iommu:stray, replace:victim); other quizzes keep the difficulty's topics",
    )
    make.add_argument(
        "--force", action="store_true", help="overwrite a folder that holds another course (its keys are lost)"
    )
    make.set_defaults(func=run_make)
    grade = quiz_sub.add_parser(
        "grade",
        help="grade a folder of answer files against the keys; per-student feedback and a CSV gradebook",
        description="Grade ANSWERS/ID.txt (or ID.json) of each student on the roster with that student's key: "
        "each part right or wrong, a question scoring the share of its parts right.  Writes "
        "COURSE/feedback/ID.txt (what was expected and why) and a CSV gradebook; files that cannot be read, "
        "lines that cannot be understood and ids that do not match are reported with file and line.",
    )
    grade.add_argument("course", help="the folder hwsim quiz make wrote")
    grade.add_argument("answers", help="the folder of answer files, named ID.txt or ID.json")
    grade.add_argument("--csv", help="the gradebook to write (default: COURSE/gradebook.csv)")
    grade.add_argument("--feedback", help="the folder for feedback files (default: COURSE/feedback)")
    grade.set_defaults(func=run_grade)


def run_make(args: argparse.Namespace) -> int:
    from ..teach.course import CoursePlan, make_course, read_existing_course, read_roster

    students = read_roster(args.roster)
    seed = args.course_seed
    if seed is None and not args.force:
        existing = read_existing_course(args.out)  # a course made before: the same seed, so its sets stay
        seed = existing["course_seed"] if existing else None
    if seed is None:
        seed = random.SystemRandom().randrange(1 << 64)
    plan = CoursePlan.build(
        course_seed=seed,
        counts={
            "mmu": args.mmu,
            "tlb": args.tlb,
            "iommu": args.iommu,
            "replace": args.replace,
            "x86": args.x86,
            "arm": args.arm,
        },
        difficulty=args.difficulty,
        topics=args.topic,
    )
    make_course(plan, students, args.out, force=args.force)
    n = sum(plan.counts.values())
    print(f"wrote {len(students)} sets of {n} question{'s' if n != 1 else ''} to {args.out}")
    print(f"  hand out: {os.path.join(args.out, 'sheets', 'ID.txt')} and ID-answers.txt")
    print(f"  keep: {os.path.join(args.out, 'course.json')} (the course seed) and {os.path.join(args.out, 'keys')}")
    return 0


def run_grade(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..errors import ConfigError
    from ..teach.grade import feedback_lines, grade_folder, summary_lines

    book = grade_folder(args.course, args.answers)
    csv_path = Path(args.csv or os.path.join(args.course, "gradebook.csv"))
    feedback = Path(args.feedback or os.path.join(args.course, "feedback"))
    try:
        csv_path.write_text(book.csv_text(), encoding="utf-8")
        feedback.mkdir(parents=True, exist_ok=True)
        for result in book.results:
            (feedback / f"{result.student}.txt").write_text("\n".join(feedback_lines(result)) + "\n", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {exc.filename!r}: {exc.strerror}") from None
    print("\n".join(summary_lines(book)))
    print(f"gradebook: {csv_path}; feedback: {feedback}")
    return 0
