"""Compare hwsim with wasmtime on one module, and run campaigns of many generated modules.

::

    seed --smith--> module --+--> run_hwsim ----+--> compare --> Verdict --> Summary
                             +--> run_wasmtime -+                    |
                                                  divergence: saved as seed-N.wasm + seed-N.json,
                                                  optionally shrunk (wasm-tools shrink)

A :class:`Verdict` is one of

* ``agree``: same validation result, same instantiation, every call the same
  (results bit for bit, or the same trap), the same exported memories,
  globals and tables afterwards;
* ``divergence``: they differ (``key`` says where: ``load``, ``instantiate``,
  ``call``, ``memory``, ``global``, ``table``, ``error``);
* ``exhausted``: a call ran out of stack or time (fuel) on at least one side;
  the calls before it were compared, the state after it is not (the
  specification leaves resource exhaustion to the engine);
* ``limit``: an engine refused a resource (a memory or table too large);
* ``skipped``: smith made no module from the seed, or hwsim reports the
  module outside its scope;
* ``escaped``: an exception other than :class:`~hwsim.errors.HwsimError` left
  hwsim's API (always a bug).

Values compare bit for bit, NaNs included: the specification lets an
arithmetic NaN result have any payload and sign, RISC-V always gives the
canonical pattern, and the oracle is configured to canonicalise too
(:func:`~hwsim.fuzz.execute.wasmtime_engine`).  Instructions that must keep a
NaN's bits (moves, loads and stores, ``neg``/``abs``/``copysign``,
reinterpretations) are thereby checked exactly.
"""

from __future__ import annotations

import json
import multiprocessing
import shlex
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import cast

from .execute import CallPlan, Run, run_hwsim, run_wasmtime, wasmtime_engine
from .smith import FuzzError, generate, normalise_overrides, shrink


@dataclass
class Verdict:
    kind: str  # agree | divergence | exhausted | limit | skipped | escaped
    key: str = ""  # what differs or why: "call", "memory", "load", ... or the skip reason
    detail: str = ""
    calls: int = 0  # calls compared
    calls_agreed: int = 0
    object_calls: int = 0  # calls made with a non-null reference argument (a result, global or function)


def _fmt(outcome) -> str:
    if outcome[0] == "ok" and len(outcome) > 1:
        return "ok " + ", ".join(f"{t}:{v:#x}" if isinstance(v, int) else f"{t}:{v}" for t, v in outcome[1])
    return " ".join(str(x) for x in outcome)


def _same_outcome(hw: tuple, wt: tuple) -> bool:
    """Whether two call or instantiation outcomes agree: values bit for bit, NaNs included (both engines
    give arithmetic NaNs the canonical pattern), or traps with a matching code."""
    if hw[0] == "trap" and wt[0] == "trap":
        return hw[1] in wt[1].split("|")
    return _plain(hw) == _plain(wt)


def _plain(outcome) -> tuple:
    return tuple(tuple(tuple(v) for v in x) if isinstance(x, list) else x for x in outcome)


def compare(hw: Run, wt: Run) -> Verdict:
    """The verdict on one module from the two engines' runs."""
    if hw.escaped:
        return Verdict("escaped", "escaped", hw.escaped)
    if hw.load[0] == "unsupported":
        return Verdict("skipped", "hwsim: " + hw.load[1].split(" (at ")[0])
    if hw.load[0] != "ok" or wt.load[0] != "ok":
        if hw.load[0] == "rejected" and wt.load[0] == "rejected":
            return Verdict("agree", "both reject")
        return Verdict("divergence", "load", f"hwsim: {_fmt(hw.load)}; wasmtime: {_fmt(wt.load)}")
    if hw.instantiate is None or wt.instantiate is None:
        return Verdict("agree", "loaded")
    if hw.instantiate[0] in ("limit", "exhausted") or wt.instantiate[0] in ("limit", "exhausted"):
        if hw.instantiate[0] != "error" and wt.instantiate[0] != "error":
            return Verdict(
                "limit" if "limit" in (hw.instantiate[0], wt.instantiate[0]) else "exhausted",
                "instantiate",
                f"hwsim: {_fmt(hw.instantiate)}; wasmtime: {_fmt(wt.instantiate)}",
            )
    if not _same_outcome(hw.instantiate, wt.instantiate) or hw.instantiate[0] == "error":
        return Verdict("divergence", "instantiate", f"hwsim: {_fmt(hw.instantiate)}; wasmtime: {_fmt(wt.instantiate)}")
    if hw.instantiate_log != wt.instantiate_log:
        return Verdict("divergence", "host calls", "the start function called the host differently")
    verdict = Verdict("agree", "" if hw.instantiate[0] == "ok" else "instantiation trap")
    for (name, a, log_a), (_, b, log_b) in zip(hw.calls, wt.calls):
        if a[0] == "skipped" and a == b:
            continue  # not made, in either (a reference argument's source gave nothing): not compared
        verdict.calls += 1
        if a == ("exhausted", "time") and b[0] in ("ok", "trap"):
            # smith's fuel ends every call within a few thousand steps, and wasmtime finished: hwsim hung
            verdict.kind, verdict.key = "divergence", "call"
            verdict.detail = f"call {name!r}: hwsim: {_fmt(a)} (hung); wasmtime: {_fmt(b)}"
            return verdict
        if a[0] in ("exhausted", "limit") or b[0] in ("exhausted", "limit"):
            if a[0] != "error" and b[0] != "error":
                kind = "limit" if "limit" in (a[0], b[0]) else "exhausted"
                sides = "both" if a[0] == b[0] else ("hwsim" if a[0] in ("exhausted", "limit") else "wasmtime")
                verdict.kind, verdict.key = kind, f"{sides}: {a[1] if a[0] != 'ok' and a[0] != 'trap' else b[1]}"
                verdict.detail = f"call {name!r}: hwsim: {_fmt(a)}; wasmtime: {_fmt(b)}"
                return verdict
        if not _same_outcome(a, b) or a[0] == "error":
            verdict.kind, verdict.key = "divergence", "call"
            verdict.detail = f"call {name!r}: hwsim: {_fmt(a)}; wasmtime: {_fmt(b)}"
            return verdict
        if log_a != log_b:
            verdict.kind, verdict.key = "divergence", "host calls"
            verdict.detail = f"call {name!r} called the host differently"
            return verdict
        verdict.calls_agreed += 1
    if len(hw.calls) != len(wt.calls):
        verdict.kind, verdict.key = "divergence", "call"
        verdict.detail = f"hwsim made {len(hw.calls)} calls, wasmtime {len(wt.calls)}"
        return verdict
    if hw.object_calls != wt.object_calls:
        verdict.kind, verdict.key = "divergence", "call"
        verdict.detail = f"hwsim passed references in {hw.object_calls} calls, wasmtime in {wt.object_calls}"
        return verdict
    verdict.object_calls = hw.object_calls
    for name in sorted(set(hw.final) | set(wt.final)):
        a, b = hw.final.get(name), wt.final.get(name)
        if a is None or b is None:
            verdict.kind, verdict.key = "divergence", name.split()[0]
            verdict.detail = f"{name}: only {'hwsim' if b is None else 'wasmtime'} has it"
            return verdict
        if tuple(a) != tuple(b):
            verdict.kind, verdict.key = (
                "divergence",
                name.rsplit(" ", 1)[0] if name.startswith("imported") else name.split()[0],
            )
            verdict.detail = f"{name}: hwsim {a}, wasmtime {b}"
            if name in hw.memories and name in wt.memories:
                verdict.detail += _first_difference(hw.memories[name], wt.memories[name])
            return verdict
    return verdict


def _first_difference(a: bytes, b: bytes) -> str:
    for i in range(min(len(a), len(b))):
        if a[i] != b[i]:
            return f"; first difference at {i:#x}: hwsim {a[i : i + 8].hex()}, wasmtime {b[i : i + 8].hex()}"
    return f"; sizes {len(a):#x} and {len(b):#x}"


def check_module(wasm: bytes, seed: int = 0, *, engine=None) -> Verdict:
    """Run ``wasm`` in both engines (call arguments drawn from ``seed``) and compare."""
    from ..errors import HwsimError
    from ..wasm import decode_module

    try:
        plan = CallPlan.for_module(decode_module(wasm), seed)
    except HwsimError:
        plan = None  # compare only whether the engines load it
    hw = run_hwsim(wasm, plan)
    wt = run_wasmtime(wasm, plan, engine=engine)
    return compare(hw, wt)


# -- campaigns --------------------------------------------------------------------------------------------


@dataclass
class Summary:
    modules: int = 0  # generated and compared (skipped ones included)
    no_module: int = 0  # seeds smith could not make a module from
    functions: int = 0  # calls compared
    calls_agreed: int = 0
    object_calls: int = 0  # calls passed a non-null reference (in modules whose runs agreed)
    verdicts: Counter = field(default_factory=Counter)
    reasons: dict = field(default_factory=dict)  # verdict kind -> Counter of keys
    divergences: list = field(default_factory=list)  # [{"seed", "key", "detail", "file"}]
    escaped: list = field(default_factory=list)
    crashed: list = field(default_factory=list)  # seeds whose worker died, or where the fuzzer itself failed
    harness_errors: list = field(default_factory=list)  # [{"seed", "harness_error": traceback}]
    hung: list = field(default_factory=list)  # seeds whose worker went silent for the stall time and was killed
    smith: list = field(default_factory=list)  # the smith flag overrides of the campaign
    worker_deaths: int = 0  # workers that died or hung between two seeds (their other seeds were re-run)
    cluster_reruns: int = 0  # chunks a cluster ran again because their worker was lost mid-task
    cluster_workers: dict = field(default_factory=dict)  # worker -> seeds it checked (a cluster campaign)
    lost: list = field(default_factory=list)  # [{"seeds": [first, last], "reason"}]: chunks never finished
    seconds: float = 0.0
    first_seed: int = 0
    last_seed: int = -1

    def add(self, record: dict) -> None:
        if "harness_error" in record:
            self.crashed.append(record["seed"])
            self.harness_errors.append(record)
            return
        if record.get("no_module"):
            self.no_module += 1
            return
        self.modules += 1
        v = record["verdict"]
        self.functions += v["calls"]
        self.calls_agreed += v["calls_agreed"]
        self.object_calls += v.get("object_calls", 0)
        self.verdicts[v["kind"]] += 1
        if v["kind"] != "agree":
            self.reasons.setdefault(v["kind"], Counter())[v["key"]] += 1
        if v["kind"] == "divergence":
            self.divergences.append(
                {"seed": record["seed"], "key": v["key"], "detail": v["detail"], "file": record.get("file")}
            )
        if v["kind"] == "escaped":
            self.escaped.append({"seed": record["seed"], "detail": v["detail"], "file": record.get("file")})

    def merge(self, other: dict) -> None:
        """Add the counts and findings of another campaign's summary (its :meth:`to_json`) over other seeds."""
        for name in (
            "modules",
            "no_module",
            "functions",
            "calls_agreed",
            "object_calls",
            "worker_deaths",
            "cluster_reruns",
        ):
            setattr(self, name, getattr(self, name) + other.get(name, 0))
        self.verdicts.update(other["verdicts"])
        for kind, keys in other["reasons"].items():
            self.reasons.setdefault(kind, Counter()).update(keys)
        for name in ("divergences", "escaped", "crashed", "harness_errors", "hung", "lost"):
            getattr(self, name).extend(other.get(name, []))
        self.last_seed = max(self.last_seed, other["last_seed"])

    def in_seed_order(self) -> None:
        """Sort the findings by seed: a campaign run in chunks then reads as one run in order."""
        for name in ("divergences", "escaped", "harness_errors"):
            getattr(self, name).sort(key=lambda d: d["seed"])
        self.crashed.sort()
        self.hung.sort()
        self.lost.sort(key=lambda d: d["seeds"])

    def format(self) -> str:
        lines = [
            f"seeds {self.first_seed}..{self.last_seed}: {self.modules} modules "
            f"({self.no_module} seeds gave no module), {self.seconds:.0f} s"
            + (f", smith {' '.join(self.smith)}" if self.smith else ""),
            f"functions called: {self.functions}, agreed: {self.calls_agreed}, "
            f"with a non-null reference argument: {self.object_calls}",
        ]
        for kind in ("agree", "divergence", "exhausted", "limit", "skipped", "escaped"):
            lines.append(f"{kind}: {self.verdicts.get(kind, 0)}")
            for key, n in sorted(self.reasons.get(kind, {}).items(), key=lambda kv: -kv[1])[:12]:
                lines.append(f"    {n:6d}  {key}")
        for d in self.divergences[:50]:
            lines.append(f"DIVERGENCE seed {d['seed']} [{d['key']}] {d['detail'][:300]}  ({d['file']})")
            if d.get("file"):
                lines.append(f"    replay: {replay_command(d['file'], d['seed'])}")
        for d in self.escaped[:20]:
            lines.append(f"ESCAPED seed {d['seed']}: {d['detail'].strip().splitlines()[-1]}  ({d['file']})")
            if d.get("file"):
                lines.append(f"    replay: {replay_command(d['file'], d['seed'])}")
        errors = {e["seed"]: e["harness_error"].strip().splitlines()[-1] for e in self.harness_errors}
        for seed in self.crashed:
            lines.append(f"CRASHED on seed {seed}: {errors.get(seed, 'the worker process died')}")
        for seed in self.hung:
            lines.append(f"HUNG on seed {seed}: the worker said nothing for the stall time and was killed")
        if self.worker_deaths:
            lines.append(f"WORKERS LOST between seeds: {self.worker_deaths} (their remaining seeds were re-run)")
        if self.cluster_workers:
            seeds = ", ".join(f"{name} {n}" for name, n in sorted(self.cluster_workers.items()))
            lines.append(f"seeds per worker: {seeds}")
        if self.cluster_reruns:
            lines.append(f"cluster: {self.cluster_reruns} chunks ran again after their worker was lost mid-task")
        for d in self.lost:
            lines.append(f"NOT CHECKED: seeds {d['seeds'][0]}..{d['seeds'][1]}: {d['reason']}")
        lines.append(
            f"{self.verdicts.get('agree', 0)} agreed, {len(self.divergences)} divergences, "
            f"{len(self.escaped)} escaping exceptions, {len(self.crashed)} crashes, {len(self.hung)} hangs"
        )
        return "\n".join(lines)

    def to_json(self) -> dict:
        d = asdict(self)
        d["verdicts"] = dict(self.verdicts)
        d["reasons"] = {k: dict(v) for k, v in self.reasons.items()}
        return d


def check_seed(seed: int, out_dir: Path | None, *, engine=None, smith: tuple[str, ...] = ()) -> dict:
    """Generate the module of ``seed`` (with the smith flag overrides ``smith``), compare, and save it under
    ``out_dir`` if it diverges or escapes."""
    wasm = generate(seed, overrides=smith)
    if wasm is None:
        return {"seed": seed, "no_module": True}
    verdict = check_module(wasm, seed, engine=engine)
    record = {"seed": seed, "size": len(wasm), "verdict": asdict(verdict)}
    if verdict.kind in ("divergence", "escaped") and out_dir is not None:
        record["file"] = str(save_case(out_dir, f"seed-{seed}", wasm, seed, verdict))
    return record


def replay_command(file: str | Path, seed: int) -> str:
    """The command that checks a saved module again on one machine (the seed draws the call arguments)."""
    return f"hwsim fuzz --check {shlex.quote(str(file))} --seed {seed}"


def save_case(out_dir: Path, stem: str, wasm: bytes, seed: int, verdict: Verdict) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{stem}.wasm"
    path.write_bytes(wasm)
    info = {"seed": seed, "kind": verdict.kind, "key": verdict.key, "detail": verdict.detail}
    info["replay"] = replay_command(path, seed)
    (out_dir / f"{stem}.json").write_text(json.dumps(info, indent=1) + "\n")
    return path


def _save_lost_seed(out_dir: Path | None, seed: int, smith: tuple[str, ...], kind: str) -> None:
    """The module of a seed whose worker crashed or hung, saved as a divergence is (smith makes it again from
    the seed, here in the parent), so that it can be replayed and shrunk on its own."""
    if out_dir is None:
        return
    try:
        wasm = generate(seed, overrides=smith)
    except FuzzError:
        return  # smith itself fails: the seed is reported; there is no module to keep
    if wasm is not None:
        what = "the worker process died" if kind == "crash" else "the worker said nothing for the stall time"
        save_case(out_dir, f"seed-{seed}", wasm, seed, Verdict(kind, kind, f"{what} on this module"))


STARTUP = 120.0  # seconds a new worker may take to import everything and start its first seed


def _worker(seeds: list[int], out_dir: str | None, conn, check=None, smith: tuple[str, ...] = ()) -> None:
    engine = wasmtime_engine()
    out = Path(out_dir) if out_dir else None
    for seed in seeds:
        conn.send(("start", seed))
        try:
            record = (check or check_seed)(seed, out, engine=engine, smith=smith)
        except FuzzError as exc:
            record = {"seed": seed, "tool_error": str(exc)}
        except Exception:  # noqa: BLE001 -- a bug in the fuzzer itself (or the oracle): report, go on
            record = {"seed": seed, "harness_error": traceback.format_exc()}
        conn.send(("done", record))
    conn.send(("finished", None))


def run_campaign(
    *,
    first_seed: int = 0,
    count: int | None = None,
    seconds: float | None = None,
    jobs: int = 1,
    out_dir: Path | None = None,
    progress=None,
    chunk: int = 20,
    stall: float = 300.0,
    check=None,
    smith: tuple[str, ...] = (),
) -> Summary:
    """Check seeds ``first_seed, first_seed+1, ...`` until ``count`` seeds or ``seconds`` have passed.

    ``jobs`` worker processes take chunks of ``chunk`` seeds; a worker that dies (a crash in native code)
    has the seed it was on recorded in ``Summary.crashed`` and is replaced.  ``progress(summary)`` is
    called after each seed.  A worker silent for ``stall`` seconds (one seed should take well under a
    second) is killed and its seed counted in ``Summary.hung``: a hang is a finding, not the end of the run.
    ``check`` replaces :func:`check_seed` in the workers (a module-level function: workers are spawned).
    ``smith`` overrides flags of :data:`~hwsim.fuzz.smith.SMITH_FLAGS` (``max-instructions=2000``).
    """
    smith = normalise_overrides(smith)
    if count is None and seconds is None:
        raise FuzzError("give a count of modules or a time")
    summary = Summary(first_seed=first_seed, smith=list(smith))
    start = time.monotonic()
    next_seed = first_seed
    end_seed = None if count is None else first_seed + count
    ctx = multiprocessing.get_context("spawn")  # fork would copy a parent's locks (wasmtime, pytest threads): deadlock
    workers: dict[Connection, list] = {}  # conn -> [process, current seed, seeds left]

    def more_seeds() -> list[int]:
        nonlocal next_seed
        if seconds is not None and time.monotonic() - start >= seconds:
            return []
        stop = next_seed + chunk if end_seed is None else min(next_seed + chunk, end_seed)
        seeds = list(range(next_seed, stop))
        next_seed = stop
        return seeds

    def spawn(seeds: list[int]) -> None:
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=_worker, args=(seeds, str(out_dir) if out_dir else None, child, check, smith), daemon=True
        )
        proc.start()
        child.close()
        workers[parent] = [proc, None, list(seeds), time.monotonic(), False]  # ..., heard from it yet

    def lost(proc, current, left: list[int], heard: bool, where: list) -> None:
        """A worker died or hung: blame the seed it was on, and hand the rest of its seeds to a new one."""
        if current is not None:
            where.append(current)
            summary.last_seed = max(summary.last_seed, current)
            _save_lost_seed(out_dir, current, smith, "crash" if where is summary.crashed else "hang")
        elif not heard:  # before its first seed: the environment is broken, and a new worker would be too
            raise FuzzError(f"a fuzz worker died before checking any seed (exit code {proc.exitcode})")
        else:
            summary.worker_deaths += 1  # between seeds (say, in a finaliser): no seed to blame, none lost
        rest = [s for s in left if s != current]
        if rest:
            spawn(rest)

    for _ in range(max(1, jobs)):
        seeds = more_seeds()
        if seeds:
            spawn(seeds)
    try:
        while workers:
            # wait returns some of the objects it is given: here, the workers' connections
            ready = cast(list[Connection], wait(list(workers), timeout=min(stall, 5.0)))
            now = time.monotonic()
            silent = [
                c
                for c in workers
                if c not in ready and now - workers[c][3] > (stall if workers[c][4] else max(stall, STARTUP))
            ]
            for conn in silent:
                proc, current, left, _, heard = workers.pop(conn)
                proc.kill()
                proc.join()
                lost(proc, current, left, heard, summary.hung)
            for conn in ready:
                if conn not in workers:
                    continue
                workers[conn][3] = now
                proc, current, left, _, heard = workers[conn]
                try:
                    what, value = conn.recv()
                except EOFError:
                    proc.join()
                    del workers[conn]
                    lost(proc, current, left, heard, summary.crashed)
                    continue
                workers[conn][4] = True
                if what == "start":
                    workers[conn][1] = value
                elif what == "done":
                    workers[conn][1] = None
                    left.remove(value["seed"])
                    if "tool_error" in value:
                        raise FuzzError(value["tool_error"])
                    summary.add(value)
                    summary.last_seed = max(summary.last_seed, value["seed"])
                    summary.seconds = time.monotonic() - start
                    if progress is not None:
                        progress(summary)
                elif what == "finished":
                    proc.join()
                    del workers[conn]
                    seeds = more_seeds()
                    if seeds:
                        spawn(seeds)
    finally:
        for proc, *_ in workers.values():
            proc.kill()
            proc.join()
    summary.seconds = time.monotonic() - start
    return summary


# -- shrinking -------------------------------------------------------------------------------------------


def predicate_script(directory: Path, seed: int, key: str) -> Path:
    """A script for ``wasm-tools shrink``: exits 0 when its module still diverges with ``key``."""
    path = directory / "predicate.sh"
    cmd = " ".join(
        shlex.quote(a) for a in (sys.executable, "-m", "hwsim", "fuzz", "--seed", str(seed), "--expect", key, "--check")
    )
    path.write_text(f'#!/bin/sh\nexec {cmd} "$1" >/dev/null 2>&1\n')
    path.chmod(0o755)
    return path


def shrink_case(wasm: bytes, seed: int, key: str, *, attempts: int = 300) -> bytes:
    """``wasm`` minimised by ``wasm-tools shrink`` while it still diverges the same way (same ``key``)."""
    with tempfile.TemporaryDirectory(prefix="hwsim-fuzz-") as tmp:
        return shrink(wasm, predicate_script(Path(tmp), seed, key), attempts=attempts)


def verdict_key(verdict: Verdict) -> str:
    """What a shrunk module must keep: the kind and where (``divergence:call``, ``escaped``)."""
    return verdict.kind if verdict.kind == "escaped" else f"{verdict.kind}:{verdict.key}"


__all__ = [
    "Summary",
    "Verdict",
    "check_module",
    "check_seed",
    "compare",
    "run_campaign",
    "save_case",
    "shrink_case",
    "verdict_key",
]
