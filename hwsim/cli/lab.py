"""``hwsim lab paging ...``: the page-fault lab (init: a starter; run: build, run, compare with the models)."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    from ..lab.workloads import WORKLOADS
    from . import int_arg

    lab = sub.add_parser("lab", help="course labs that run students' code on the emulated CPU (paging)")
    lab_sub = lab.add_subparsers(dest="lab_command", metavar="LAB", required=True)
    from .quiz import add_quiz_parser

    add_quiz_parser(
        lab_sub,
        "replace-quiz",
        "hwsim.teach.replace_quiz",
        help="generate page-replacement exercises from a seed: faults, victims, write-backs, Belady's anomaly",
        description="Page-replacement exercises: a reference string, a number of frames and a policy (FIFO, "
        "clock, LRU, OPT, aging); the same rules as the page-fault lab's models.",
    )
    paging = lab_sub.add_parser(
        "paging",
        help="the page-fault lab: write the page-fault handler of a machine with few frames",
        description="Students write a page-fault handler in C (native RISC-V, S-mode) for a machine with few "
        "frames: demand paging with a replacement policy built on the A/D bits hwsim's MMU sets.  `run` "
        "builds it, runs reference workloads in U-mode over it, checks every page's data, and prints faults, "
        "page-ins and write-backs beside hwsim's models (FIFO, clock, aging, LRU) and Belady's OPT over the "
        "reference string recorded from the run.",
    )
    paging_sub = paging.add_subparsers(dest="paging_command", metavar="SUBCOMMAND", required=True)
    init = paging_sub.add_parser("init", help="write a starter: DIR/handler.c (a skeleton) and DIR/lab.h")
    init.add_argument("dir", metavar="DIR")
    init.set_defaults(func=run_init)
    run = paging_sub.add_parser(
        "run",
        help="build DIR's handler and run it on the reference workloads",
        description="Build every .c file in DIR with lab.h (zig cc, riscv64) and run the handler on each "
        "workload; exit status 1 when a run failed (the message says what the handler did wrong).",
    )
    run.add_argument("dir", metavar="DIR", nargs="?", help="the lab directory (omit with --solution)")
    run.add_argument(
        "--solution",
        choices=["fifo", "clock", "second-chance", "aging"],
        help="run hwsim's reference solution in C for this policy instead of DIR's handler",
    )
    run.add_argument("--frames", type=int_arg, action="append", help="physical frames (repeatable; default 4; 1 to 64)")
    run.add_argument(
        "--workload",
        action="append",
        choices=list(WORKLOADS),
        help="run this workload (repeatable; default: all of them)",
    )
    run.add_argument("--refs", help='a reference string of your own instead: pages, "w" after a write ("1 2 3w 1")')
    run.add_argument("--tick", type=int_arg, default=4, help="references between two lab_tick calls (default 4)")
    run.add_argument("--quiet", action="store_true", help="do not print the handler's lab_log lines")
    run.add_argument("--json", action="store_true", help="print one JSON object")
    run.add_argument("--force", action="store_true", help="rebuild even when the sources did not change")
    run.set_defaults(func=run_run)


def run_init(args: argparse.Namespace) -> int:
    from ..lab.paging import write_starter

    for path in write_starter(args.dir):
        print(f"wrote {path}")
    print(f"next: edit {args.dir}/handler.c, then: hwsim lab paging run {args.dir}")
    return 0


def run_run(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from ..errors import ConfigError
    from ..lab.paging import LabError, build_handler, build_sources, compare, run_handler, solution_source
    from ..lab.policies import format_refs, parse_refs
    from ..lab.workloads import WORKLOADS, describe, get_workload

    if args.solution:
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hwsim" / "lab"
        out = Path(args.dir) / "build" if args.dir else cache
        elf_path = build_sources([solution_source(args.solution)], out / f"solution-{args.solution}.elf")
        who = f"reference solution ({args.solution})"
    elif args.dir:
        elf_path = build_handler(args.dir, force=args.force)
        who = "your handler"
    else:
        raise ConfigError("give the lab directory (hwsim lab paging run DIR), or --solution POLICY")
    elf = elf_path.read_bytes()
    if args.refs:
        try:
            runs = [("custom", parse_refs(args.refs), "your reference string")]
        except ValueError as exc:
            raise LabError(f"--refs: {exc}") from None
    else:
        runs = [(w, get_workload(w), describe(w)) for w in args.workload or list(WORKLOADS)]
    failed = False
    results = []
    for frames in args.frames or [4]:
        for name, refs, what in runs:
            run = run_handler(elf, refs, frames=frames, workload=name, tick=args.tick, name=str(elf_path))
            table = compare(run, refs, tick=args.tick)
            failed |= run.error is not None
            results.append((name, what, refs, run, table))
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "workload": name,
                        "frames": run.frames,
                        "references": format_refs(run.refs),
                        "handler": {"faults": run.faults, "page_ins": run.page_ins, "write_backs": run.write_backs},
                        "error": run.error,
                        "warnings": run.warnings,
                        "models": {p: c.to_json() for p, c in table.items()},
                    }
                    for name, _what, _refs, run, table in results
                ]
            )
        )
        return 1 if failed else 0
    for name, what, refs, run, table in results:
        writes = sum(w for _, w in refs)
        print(f"workload {name}: {what}")
        print(f"  {len(refs)} references ({writes} writes), {run.frames} frames, a tick every {args.tick}")
        if not args.quiet:
            for line in run.log:
                print(f"  log: {line}")
        print(f"  {'':26}{'faults':>8}{'page-ins':>10}{'write-backs':>13}")
        if run.error is None:
            print(f"  {who:26}{run.faults:>8}{run.page_ins:>10}{run.write_backs:>13}")
        else:
            print(f"  {who:26}  FAILED after {run.faults} faults")
        for title, counts in table.items():
            print(f"  {title:26}{counts.faults:>8}{counts.page_ins:>10}{counts.write_backs:>13}")
        if run.error is not None:
            print(f"  error: {run.error}")
        else:
            mine = (run.faults, run.page_ins, run.write_backs)
            same = [t for t, c in table.items() if (c.faults, c.page_ins, c.write_backs) == mine and "OPT" not in t]
            print(f"  same counts as: {', '.join(same) if same else 'none of the models'}")
        for warning in run.warnings:
            print(f"  warning: {warning}")
        print()
    return 1 if failed else 0
