"""Campaigns on a real Dask cluster: a scheduler and two workers started as processes on localhost.

The same seeds give the same summary on the cluster as on one machine; a worker killed mid-task has its
chunk run again elsewhere and counted; an interrupted campaign resumes from its results file; and the
errors a user meets (no scheduler, another campaign's results file, a chunk that fails on a worker) are
said plainly.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from wasm_conftest_helpers import locate_testsuite

from hwsim.campaign import CampaignError  # noqa: E402
from hwsim.campaign.cluster import connect  # noqa: E402
from hwsim.cli import main  # noqa: E402
from hwsim.fuzz import run_campaign  # noqa: E402
from hwsim.fuzz.cluster import run_cluster_campaign  # noqa: E402

DASK = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
WORKER = [sys.executable, "-m", "distributed.cli.dask_worker"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """The scheduler file of a scheduler with two one-thread workers (each restarted by its nanny)."""
    tmp = tmp_path_factory.mktemp("dask")
    sched = tmp / "scheduler.json"
    procs = [
        subprocess.Popen(
            [*DASK, "--scheduler-file", str(sched), "--port", "0", "--host", "127.0.0.1", "--no-dashboard"],
            stdout=subprocess.DEVNULL,
            stderr=(tmp / "scheduler.log").open("w"),
        )
    ]
    deadline = time.monotonic() + 60
    while not sched.is_file() and time.monotonic() < deadline:
        time.sleep(0.2)
    for i in range(2):
        procs.append(
            subprocess.Popen(
                [*WORKER, "--scheduler-file", str(sched), "--nthreads", "1", "--no-dashboard", "--name", f"w{i}"],
                stdout=subprocess.DEVNULL,
                stderr=(tmp / f"worker{i}.log").open("w"),
            )
        )
    try:
        client = connect(str(sched), timeout=60)
        client.wait_for_workers(2, timeout=120)
        client.close()
        yield sched
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGINT)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _same(a, b) -> None:
    """Two summaries agree in everything but the wall time and where the modules were saved."""
    a, b = a.to_json(), b.to_json()
    for d in (a, b):
        d.pop("seconds")
        for case in d["divergences"] + d["escaped"]:
            case.pop("file", None)
    assert a == b


def test_the_same_seeds_give_the_same_summary_on_two_workers_as_on_one_machine(cluster, tmp_path):
    local = run_campaign(first_seed=300, count=24, jobs=1, out_dir=tmp_path / "local")
    seen = []
    remote = run_cluster_campaign(
        str(cluster),
        first_seed=300,
        count=24,
        chunk=6,
        out_dir=tmp_path / "remote",
        progress=lambda *a: seen.append(a[1:]),
    )
    assert sum(remote.cluster_workers.values()) == 24 and set(remote.cluster_workers) <= {
        f"w{i} on {socket.gethostname()}" for i in range(2)
    }
    assert "seeds per worker: w" in remote.format()
    remote.cluster_workers = {}
    _same(remote, local)
    assert remote.modules == 24 and not remote.lost
    assert sorted(seen) == [(i, 4) for i in range(1, 5)]  # one progress call per chunk, of 4


def test_a_worker_killed_mid_task_has_its_chunk_run_again_and_counted(cluster, tmp_path):
    client = connect(str(cluster))
    try:
        pids = client.run(os.getpid)  # worker address -> pid of the worker process (its nanny restarts it)
        outcome = {}
        campaign = threading.Thread(
            target=lambda: outcome.update(
                summary=run_cluster_campaign(str(cluster), first_seed=500, count=16, chunk=4, out_dir=tmp_path)
            )
        )
        campaign.start()
        deadline = time.monotonic() + 120
        victim = None
        while victim is None and time.monotonic() < deadline:
            busy = [addr for addr, keys in client.processing().items() if any("hwsim-" in str(k) for k in keys)]
            victim = busy[0] if busy else None
            time.sleep(0.2)
        assert victim is not None, "no task started within 120 s"
        time.sleep(0.5)  # the task is inside its chunk
        os.kill(pids[victim], signal.SIGKILL)
        campaign.join(timeout=600)
        assert not campaign.is_alive()
        client.wait_for_workers(2, timeout=120)  # the nanny brought it back, for the tests after this one
    finally:
        client.close()
    summary = outcome["summary"]
    assert summary.cluster_reruns >= 1
    assert not summary.lost
    _same_counts = run_campaign(first_seed=500, count=16, jobs=1, out_dir=tmp_path / "local")
    summary.cluster_reruns, summary.cluster_workers = 0, {}
    _same(summary, _same_counts)


def test_an_interrupted_campaign_resumes_from_its_results_file(cluster, tmp_path, capsys):
    results = tmp_path / "results.jsonl"
    common = ["fuzz", "--cluster", str(cluster), "--seed", "700", "--chunk", "5", "--quiet", "--out", str(tmp_path)]
    assert main([*common, "--count", "10", "--results", str(results)]) == 0
    assert len(results.read_text().splitlines()) == 2
    with results.open("a") as f:
        f.write('{"campaign": {"kind": "fu')  # a line cut short by the interruption: that chunk runs again
    assert main([*common, "--count", "20", "--results", str(results), "--json", str(tmp_path / "s.json")]) == 0
    lines = results.read_text().splitlines()
    assert len(lines) == 5 and sorted(json.loads(x)["chunk"][0] for x in lines if x.endswith("}")) == [
        700,
        705,
        710,
        715,
    ]
    resumed = json.loads((tmp_path / "s.json").read_text())
    local = run_campaign(first_seed=700, count=20, jobs=1, out_dir=tmp_path / "local").to_json()
    assert sum(resumed.pop("cluster_workers").values()) == 20
    for d in (resumed, local):
        d.pop("seconds")
    local.pop("cluster_workers")
    assert resumed == local
    capsys.readouterr()
    # another campaign (other smith flags) must not take these results as its own
    assert main([*common, "--count", "10", "--results", str(results), "--smith", "max-funcs=3"]) == 2
    err = capsys.readouterr().err
    assert "the results of another campaign" in err and "give another --results file" in err


def test_errors_are_said_plainly(cluster, tmp_path, capsys):
    with pytest.raises(CampaignError, match=r"cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        connect("tcp://127.0.0.1:9", timeout=2)
    with pytest.raises(CampaignError, match=r"neither a scheduler file nor a scheduler address \(tcp://HOST:PORT\)"):
        connect(str(tmp_path / "no-such-scheduler.json"))
    assert main(["fuzz", "--cluster", str(cluster), "--time", "5"]) == 2
    assert "--cluster runs a --count of seeds (not --time)" in capsys.readouterr().err
    assert main(["fuzz", "--count", "3", "--results", str(tmp_path / "r.jsonl")]) == 2
    assert "--results resumes a --cluster campaign" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n{}\n")
    assert main(["fuzz", "--cluster", str(cluster), "--count", "3", "--results", str(bad)]) == 2
    assert f"{bad}:1: not a line of a campaign's results file" in capsys.readouterr().err


def test_a_chunk_whose_task_fails_is_reported_lost_and_the_others_finish(cluster):
    from hwsim.campaign import run_chunks

    def task(chunk: tuple) -> dict:  # nested: pickled by value, the workers need not import this file
        if chunk[0] == 2:
            raise RuntimeError("no wasm-tools on this worker")
        return {"square": chunk[0] ** 2}

    seen = {}
    run_chunks(
        str(cluster), task, [(1,), (2,), (3,)], identity={"kind": "test"}, on_done=lambda d: seen.update({d.chunk: d})
    )
    assert {c: d.result for c, d in seen.items()} == {(1,): {"square": 1}, (2,): None, (3,): {"square": 9}}
    assert seen[(2,)].lost == "RuntimeError: no wasm-tools on this worker"


def _hwsim(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hwsim", *argv], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600
    )


def test_exploration_on_the_cluster_finds_the_seed_one_machine_stops_at(cluster):
    race = ["run", "virt", "drivers/examples/races/dma_fixed_wait", "--seed", "30", "--explore", "60", "--quiet"]
    here = _hwsim(*race)
    there = _hwsim(*race, "--cluster", str(cluster), "--chunk", "10")
    assert here.returncode == there.returncode == 1
    found = [line for line in here.stderr.splitlines() if line.startswith("explore: seed ")]
    assert found and found[0].startswith("explore: seed 35 fails")  # (the seed the docs' race first fails at)
    assert "explore: seed 35 fails (every seed before it passed)" in there.stderr
    replay = [line for line in there.stderr.splitlines() if line.startswith("replay: ")]
    assert replay == ["replay: hwsim run virt drivers/examples/races/dma_fixed_wait --quiet --seed 35"]
    clean = _hwsim("run", "virt", "drivers/dma_copy", "--explore", "20", "--cluster", str(cluster), "--chunk", "5")
    assert clean.returncode == 0 and "explore: all 20 seeds passed (0..19)" in clean.stderr
    bad = _hwsim("run", "virt", "drivers/dma_copy", "--cluster", str(cluster))
    assert bad.returncode == 2 and "--cluster runs an exploration: give --explore N" in bad.stderr


def test_spectest_scripts_on_the_cluster_give_the_results_of_one_machine(cluster):
    suite = locate_testsuite()
    scripts = [str(suite / name) for name in ("i32.wast", "proposals/threads/atomic.wast", "address.wast")]
    here = _hwsim("spectest", "--suite", str(suite), *scripts)
    there = _hwsim("spectest", "--suite", str(suite), *scripts, "--cluster", str(cluster))
    assert here.returncode == there.returncode == 0
    assert there.stdout == here.stdout
    assert "proposals/threads/atomic.wast: 297 passed, 0 failed, 0 skipped" in there.stdout


def test_an_interrupted_exploration_resumes_from_its_results_file(cluster, tmp_path):
    results = tmp_path / "explore.jsonl"
    race = ["run", "virt", "drivers/examples/races/dma_fixed_wait", "--seed", "30", "--explore", "20", "--quiet"]
    common = [*race, "--cluster", str(cluster), "--chunk", "5", "--results", str(results)]
    first = _hwsim(*common)
    assert first.returncode == 1 and "explore: seed 35 fails (every seed before it passed)" in first.stderr
    assert "explore: per worker: " in first.stderr
    lines = results.read_text().splitlines()
    assert len(lines) == 4 and all(json.loads(x)["worker"] for x in lines)
    results.write_text("\n".join(lines[:2]) + "\n")  # the campaign was interrupted after two chunks
    again = _hwsim(*common)
    assert again.returncode == 1 and "explore: seed 35 fails (every seed before it passed)" in again.stderr
    assert f"explore: 2 chunks taken from {results}" in again.stderr
    assert len(results.read_text().splitlines()) == 4
    replay = [line for line in again.stderr.splitlines() if line.startswith("replay: ")]
    assert replay == ["replay: hwsim run virt drivers/examples/races/dma_fixed_wait --quiet --seed 35"]
    # another driver's exploration must not take these results as its own
    other = _hwsim("run", "virt", "drivers/dma_copy", "--explore", "20", *common[7:])
    assert other.returncode == 2 and "the results of another campaign" in other.stderr
    local = _hwsim("run", "virt", "drivers/dma_copy", "--explore", "5", "--results", str(results))
    assert local.returncode == 2 and "--results resumes an exploration on a cluster" in local.stderr


def test_spectest_on_the_cluster_resumes_and_runs_an_edited_script_again(cluster, tmp_path):
    suite = locate_testsuite()
    for name in ("i32.wast", "address.wast"):
        (tmp_path / name).write_text((suite / name).read_text())
    scripts = [str(tmp_path / "i32.wast"), str(tmp_path / "address.wast")]
    results = tmp_path / "spec.jsonl"
    first = _hwsim("spectest", *scripts, "--cluster", str(cluster), "--results", str(results))
    assert first.returncode == 0 and "spectest: per worker: " in first.stderr
    assert len(results.read_text().splitlines()) == 2
    again = _hwsim("spectest", *scripts, "--cluster", str(cluster), "--results", str(results))
    assert again.returncode == 0 and again.stdout == first.stdout
    assert "results file: 2 scripts" in again.stderr  # nothing ran again
    assert len(results.read_text().splitlines()) == 2
    edited = (
        tmp_path / "i32.wast"
    ).read_text() + '\n(assert_return (invoke "add" (i32.const 1) (i32.const 1)) (i32.const 3))\n'
    (tmp_path / "i32.wast").write_text(edited)
    third = _hwsim("spectest", *scripts, "--cluster", str(cluster), "--results", str(results))
    assert third.returncode == 1 and "i32.wast: " in third.stdout and " 1 failed" in third.stdout
    assert "results file: 1 scripts" in third.stderr and len(results.read_text().splitlines()) == 3
    local = _hwsim("spectest", *scripts, "--results", str(results))
    assert local.returncode == 2 and "--results resumes a run on a cluster" in local.stderr
