"""The quiz subcommands' common shape: ``--seed N [--count K] [--topic T]... [--solve] [--json]``.

A quiz module (``hwsim.teach.mmu_quiz``, ``iommu_quiz``, ``tlb_quiz``) provides ``TOPICS``,
``make_quiz(seed, count, topics)``, ``format_exercise``, ``format_answer`` and ``exercise_to_json``, and
may provide ``preamble()``: reference lines printed once before the exercises.
The same seed (and topics) always prints the same text.
"""

from __future__ import annotations

import argparse
import importlib
import json
import random


def add_quiz_parser(
    sub: argparse._SubParsersAction, name: str, module: str, *, help: str, description: str
) -> argparse.ArgumentParser:
    from ..teach import topics as quiz_topics
    from . import int_arg

    topics = getattr(quiz_topics, module.rsplit(".", 1)[1].removesuffix("_quiz").upper())
    p = sub.add_parser(
        name,
        help=help,
        description=description + "  Topics: " + "; ".join(f"{t} ({what})" for t, what in topics.items()) + ".",
    )
    p.add_argument(
        "--seed",
        type=int_arg,
        help="0 to 2^64-1; the same seed prints the same exercises (default: a random seed, printed in the header)",
    )
    p.add_argument("--count", type=int_arg, default=3, help="number of exercises (default 3, at most 1000)")
    p.add_argument(
        "--topic",
        action="append",
        choices=list(topics),
        metavar="TOPIC",
        help="draw exercises from this topic only (repeatable; default: all topics)",
    )
    p.add_argument("--solve", action="store_true", help="print each exercise's answer, worked step by step")
    p.add_argument("--json", action="store_true", help="print one JSON object (answers only with --solve)")
    p.set_defaults(func=run_quiz, quiz_module=module, quiz_command=name)
    return p


def run_quiz(args: argparse.Namespace) -> int:
    quiz = importlib.import_module(args.quiz_module)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    options = quiz.quiz_options(args) if hasattr(quiz, "quiz_options") else {}  # a quiz's own options
    exercises = quiz.make_quiz(seed, args.count, args.topic, **options)
    command = f"hwsim {args.command} {args.quiz_command} --seed {seed}"
    if args.count != 3:
        command += f" --count {args.count}"
    command += "".join(f" --topic {t}" for t in args.topic or ())
    if hasattr(quiz, "options_suffix"):
        command += quiz.options_suffix(args)
    if args.json:
        print(
            json.dumps(
                {
                    "command": command,
                    "seed": seed,
                    "solved": args.solve,
                    "exercises": [quiz.exercise_to_json(ex, solve=args.solve) for ex in exercises],
                }
            )
        )
        return 0
    rule = "=" * 78
    print(f"{command}{' --solve' if args.solve else ''}")
    if hasattr(quiz, "preamble"):
        print(rule)
        print("\n".join(quiz.preamble()))
    for ex in exercises:
        print(rule)
        print("\n".join(quiz.format_exercise(ex)))
        if args.solve:
            print("-" * 78)
            print("\n".join(quiz.format_answer(ex)))
    print(rule)
    if not args.solve:
        print(f"Answers: {command} --solve")
    return 0
