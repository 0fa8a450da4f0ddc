"""The quiz subcommands' common shape: ``--seed N [--count K] [--topic T]... [--solve] [--json]``.

A quiz module (``hwsim.teach.mmu_quiz``, ``iommu_quiz``, ``tlb_quiz``) provides ``TOPICS``,
``make_quiz(seed, count, topics)``, ``format_exercise``, ``format_answer`` and ``exercise_to_json``, and
may provide ``preamble()``: reference lines printed once before the exercises.  ``--html FILE`` also
writes the exercises as an interactive page (``hwsim.teach.html.quiz_html``).
The same seed (and topics) always prints the same text.
"""

from __future__ import annotations

import argparse
import importlib
import json
import random
import sys

from ..errors import ConfigError


def _topics_of(module: str) -> dict[str, str]:
    from ..teach import topics as quiz_topics

    return getattr(quiz_topics, module.rsplit(".", 1)[1].removesuffix("_quiz").upper())


def add_quiz_parser(
    sub: argparse._SubParsersAction,
    name: str,
    module: str,
    *,
    help: str,
    description: str,
    formats: dict[str, str] | None = None,
) -> argparse.ArgumentParser:
    """``formats`` (format name -> quiz module; the first is the default) adds ``--format``."""
    from . import int_arg

    topics = _topics_of(module)
    description += "  Topics: " + "; ".join(f"{t} ({what})" for t, what in topics.items()) + "."
    all_topics = dict(topics)
    for fmt, mod in (formats or {}).items():
        if mod != module:
            more = _topics_of(mod)
            all_topics.update(more)
            description += f"  Topics of --format {fmt}: {', '.join(more)}."
    p = sub.add_parser(name, help=help, description=description)
    if formats:
        p.add_argument(
            "--format",
            choices=list(formats),
            default=next(iter(formats)),
            help=f"the page-table format (default {next(iter(formats))})",
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
        choices=list(all_topics),
        metavar="TOPIC",
        help="draw exercises from this topic only (repeatable; default: all topics)",
    )
    p.add_argument("--solve", action="store_true", help="print each exercise's answer, worked step by step")
    p.add_argument("--json", action="store_true", help="print one JSON object (answers only with --solve)")
    p.add_argument(
        "--html",
        metavar="FILE",
        help="also write the exercises as a self-contained interactive page: type an answer, the page checks "
        "it against the model answer it holds (practice: the answer is in its source) and explains a wrong one",
    )
    p.set_defaults(func=run_quiz, quiz_module=module, quiz_command=name, quiz_formats=formats)
    return p


def run_quiz(args: argparse.Namespace) -> int:
    formats = getattr(args, "quiz_formats", None)
    fmt = getattr(args, "format", None)
    default = formats is None or fmt == next(iter(formats))
    quiz = importlib.import_module(args.quiz_module if formats is None or default else formats[fmt])
    for topic in args.topic or ():
        if topic not in quiz.TOPICS:
            where = f"--format {fmt}" if fmt else args.quiz_command
            raise ConfigError(f"topic {topic!r} is not one of {where}'s: {', '.join(quiz.TOPICS)}")
    if getattr(args, "html", None) and not default:
        raise ConfigError(f"--html is not available with --format {fmt} (the practice page knows sv39 only)")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    kwargs = {} if default else {"fmt": fmt}
    options = quiz.quiz_options(args) if hasattr(quiz, "quiz_options") else {}  # a quiz's own options
    exercises = quiz.make_quiz(seed, args.count, args.topic, **kwargs, **options)
    command = f"hwsim {args.command} {args.quiz_command}" + ("" if default else f" --format {fmt}") + f" --seed {seed}"
    if args.count != 3:
        command += f" --count {args.count}"
    command += "".join(f" --topic {t}" for t in args.topic or ())
    if hasattr(quiz, "options_suffix"):
        command += quiz.options_suffix(args)
    if args.html:
        from ..teach.html import quiz_html, write_html

        quiz_name = quiz.__name__.rsplit(".", 1)[1].removesuffix("_quiz")
        write_html(args.html, quiz_html(quiz_name, exercises, title=command))
        print(f"wrote {args.html}", file=sys.stderr)
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
        print("\n".join(quiz.preamble(**kwargs)))
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
