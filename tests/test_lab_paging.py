"""hwsim.lab (the page-fault lab) and hwsim.teach.replace_quiz: the reference C handlers, run on the emulated
CPU, against the Python model; OPT against every policy and an exhaustive search; Belady's anomaly; each
student mistake and its message; the quiz against a separate straight-line model."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.cli import main
from hwsim.lab import paging
from hwsim.lab.paging import SOLUTIONS
from hwsim.lab.policies import Policy, parse_refs, simulate
from hwsim.lab.workloads import WORKLOADS, get_workload
from hwsim.teach.replace_quiz import TOPICS, make_quiz

# -- the reference solutions on the CPU ------------------------------------------------------------------


@pytest.fixture(scope="module")
def elves(tmp_path_factory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("lab")
    return {p: paging.build_sources([paging.solution_source(p)], out / f"{p}.elf").read_bytes() for p in SOLUTIONS}


@pytest.mark.parametrize("solution", list(SOLUTIONS))
@pytest.mark.parametrize("frames", [3, 4])
def test_reference_solutions_match_the_model_exactly(elves, solution, frames):
    policy = SOLUTIONS[solution]
    for name in WORKLOADS:
        refs = get_workload(name)
        run = paging.run_handler(elves[solution], refs, frames=frames, workload=name)
        assert run.error is None, (name, run.error)
        assert run.warnings == []
        assert run.refs == refs  # the reference string hwsim recorded from the run is the workload's
        model = simulate(policy, run.refs, frames).counts
        assert (run.faults, run.page_ins, run.write_backs) == model, (name, frames)


def test_reference_solutions_on_random_strings(elves):
    rng = random.Random(2026)
    for _ in range(6):
        frames = rng.randint(2, 5)
        refs = [(rng.randrange(frames + 4), rng.random() < 0.3) for _ in range(rng.randint(20, 80))]
        tick = rng.randint(1, 6)
        for solution, policy in SOLUTIONS.items():
            run = paging.run_handler(elves[solution], refs, frames=frames, tick=tick)
            assert run.error is None
            assert (run.faults, run.page_ins, run.write_backs) == simulate(policy, refs, frames, tick=tick).counts


def test_belady_anomaly_shows_for_fifo_on_the_cpu(elves):
    refs = get_workload("belady")
    three = paging.run_handler(elves["fifo"], refs, frames=3)
    four = paging.run_handler(elves["fifo"], refs, frames=4)
    assert (three.faults, four.faults) == (9, 10)
    assert simulate("fifo", refs, 3).faults == 9 and simulate("fifo", refs, 4).faults == 10
    assert simulate("lru", refs, 4).faults <= simulate("lru", refs, 3).faults  # a stack algorithm: never


# -- OPT ------------------------------------------------------------------------------------------------------


refs_strategy = st.lists(st.tuples(st.integers(0, 7), st.booleans()), min_size=1, max_size=60)


@settings(max_examples=300, deadline=None)
@given(refs=refs_strategy, frames=st.integers(1, 6), tick=st.integers(1, 8))
def test_opt_is_never_beaten(refs, frames, tick):
    best = simulate(Policy.OPT, refs, frames).faults
    for policy in Policy:
        assert simulate(policy, refs, frames, tick=tick).faults >= best


def _fewest_faults(refs, frames) -> int:
    """Every eviction choice tried (a search over all schedules): the true minimum."""
    best = len(refs)

    def go(i: int, resident: frozenset, faults: int) -> None:
        nonlocal best
        if faults >= best:
            return
        if i == len(refs):
            best = faults
            return
        page = refs[i][0]
        if page in resident:
            go(i + 1, resident, faults)
        elif len(resident) < frames:
            go(i + 1, resident | {page}, faults + 1)
        else:
            for victim in resident:
                go(i + 1, (resident - {victim}) | {page}, faults + 1)

    go(0, frozenset(), 0)
    return best


def test_opt_is_the_minimum_on_small_strings():
    rng = random.Random(3)
    for _ in range(300):
        frames = rng.randint(1, 3)
        refs = [(rng.randrange(5), False) for _ in range(rng.randint(1, 10))]
        assert simulate(Policy.OPT, refs, frames).faults == _fewest_faults(refs, frames), (refs, frames)


# -- the student's mistakes -------------------------------------------------------------------------------


def _variant(tmp_path: Path, policy: str, old: str, new: str) -> bytes:
    source = paging.solution_source(policy).read_text()
    assert old in source
    lab = tmp_path / "lab"
    lab.mkdir()
    (lab / "handler.c").write_text(source.replace(old, new))
    return paging.build_handler(lab).read_bytes()


def test_dirty_page_evicted_without_write_back_is_named(tmp_path):
    elf = _variant(tmp_path, "fifo", "if (old & PTE_D) lab_swap_out(victim, frame);", "")
    run = paging.run_handler(elf, get_workload("loop"), frames=4, workload="loop")
    assert run.error == (
        "data check at reference 6: page 0 reads 0x0 (page 0, version 0), expected 0x1 (page 0, version 1): "
        "page 0 was evicted dirty (D=1) from frame 0 at fault #5 (reference 4) without lab_swap_out: "
        "its last write was lost"
    )


def test_forgotten_sfence_shows_the_stale_tlb_entry_used(tmp_path):
    elf = _variant(tmp_path, "fifo", "        sfence_vma(lab_va_of(lab, victim));\n", "")
    run = paging.run_handler(elf, get_workload("loop"), frames=4, workload="loop")
    assert run.error == (
        "stale TLB entry used: reference 6 reads page 0 through frame 0 (which holds page 4 now), though page 0's "
        "PTE is invalid: lab_page_fault (fault #5) changed page 0's PTE and executed no sfence.vma for va "
        "0x40000000, so the TLB still maps page 0 to frame 0"
    )


def test_frame_mapped_twice_is_named(tmp_path):
    elf = _variant(tmp_path, "fifo", "        *lab_pte(lab, victim) = 0;\n", "")
    run = paging.run_handler(elf, get_workload("loop"), frames=4, workload="loop")
    assert run.error == (
        "after lab_page_fault: frame 0 is mapped twice, by page 0 and page 4: a write to one would change the "
        "other (evict page 0 before reusing its frame)"
    )


def test_fault_loop_is_detected_not_a_hang(tmp_path):
    lab = tmp_path / "lab"
    paging.write_starter(lab)  # the starter returns without mapping once the frames are used up
    run = paging.run_handler(paging.build_handler(lab).read_bytes(), get_workload("belady"), frames=4)
    assert run.error == (
        "fault loop: reference 6 (load of page 5, va 0x40005000) faulted 4 times in a row; after the handler "
        "returned, its PTE is still invalid (V=0): the handler returned without mapping the page (PTE 0x0)"
    )
    assert run.log == ["no free frame for page 5"] * 3


def test_read_only_mapping_loops_with_its_reason(tmp_path):
    elf = _variant(tmp_path, "fifo", "PTE_U | PTE_R | PTE_W", "PTE_U | PTE_R")
    run = paging.run_handler(elf, get_workload("loop"), frames=4)
    assert run.error is not None
    assert "faulted 4 times in a row; after the handler returned, its PTE has no W bit, and the access is a store" in (
        run.error
    )


def test_clearing_a_without_sfence_is_warned(tmp_path):
    elf = _variant(tmp_path, "clock", "            sfence_vma(lab_va_of(lab, holder[hand]));\n", "")
    run = paging.run_handler(elf, get_workload("random"), frames=4)
    assert run.error is None
    assert run.warnings[0] == (
        "lab_page_fault (fault #5) cleared A of page 9 while the TLB held it, with no sfence.vma: the MMU sets A "
        "again only after a TLB miss, so accesses to page 9 are not seen"
    )
    assert run.faults != simulate("clock", get_workload("random"), 4).faults


def test_handler_that_never_returns_is_stopped(tmp_path, monkeypatch):
    monkeypatch.setattr(paging, "HANDLER_TIMEOUT_US", 200_000)
    elf = _variant(tmp_path, "fifo", "lab_swap_in(page, frame);", "lab_swap_in(page, frame); for (;;) {}")
    run = paging.run_handler(elf, get_workload("belady"), frames=3)
    assert run.error is not None
    assert run.error.startswith(
        "lab_page_fault did not return within 0.2 s (an endless loop?); it was in lab_page_fault"
    )


def test_cli_init_and_run(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # where --solution builds without DIR
    lab = tmp_path / "lab"
    assert main(["lab", "paging", "init", str(lab)]) == 0
    assert (lab / "handler.c").is_file() and (lab / "lab.h").is_file()
    assert main(["lab", "paging", "init", str(lab)]) == 2  # never overwrites
    capsys.readouterr()
    assert main(["lab", "paging", "run", str(lab), "--workload", "belady"]) == 1
    out = capsys.readouterr().out
    assert "your handler                FAILED after 7 faults" in out
    assert "error: fault loop: reference 6" in out
    assert main(["lab", "paging", "run", "--solution", "fifo", "--workload", "belady", "--frames", "3", "--json"]) == 0
    [result] = json.loads(capsys.readouterr().out)
    assert result["handler"] == {"faults": 9, "page_ins": 9, "write_backs": 0}
    assert result["models"]["FIFO"] == {"faults": 9, "page_ins": 9, "write_backs": 0}
    assert result["models"]["OPT (Belady)"]["faults"] == 7
    assert (tmp_path / "cache" / "hwsim" / "lab" / "solution-fifo.elf").is_file()


# -- the replacement quiz against a straight-line model -----------------------------------------------------


def straight_line(policy: str, refs, nframes: int, tick: int = 4):
    """The rules of docs/teaching.md written out plainly: (faults, write-backs, victim of each reference)."""
    mem: list[dict] = []
    faults = write_backs = 0
    victims: list = []
    hand = 0
    for i, (page, write) in enumerate(refs):
        if policy == "aging" and i > 0 and i % tick == 0:
            for f in mem:
                f["count"] = (f["count"] >> 1) + (128 if f["r"] else 0)
                f["r"] = False
        found = [f for f in mem if f["page"] == page]
        if found:
            found[0]["r"] = True
            found[0]["m"] = found[0]["m"] or write
            found[0]["last"] = i
            victims.append(None)
            continue
        faults += 1
        new = {"page": page, "r": True, "m": write, "count": 0, "last": i, "loaded": i}
        if len(mem) < nframes:
            mem.append(new)
            victims.append(None)
            continue
        if policy == "fifo":
            idx = min(range(nframes), key=lambda k: mem[k]["loaded"])
        elif policy == "clock":
            while mem[hand]["r"]:
                mem[hand]["r"] = False
                hand = (hand + 1) % nframes
            idx = hand
            hand = (hand + 1) % nframes
        elif policy == "lru":
            idx = min(range(nframes), key=lambda k: mem[k]["last"])
        elif policy == "opt":
            future = [p for p, _ in refs[i + 1 :]]
            idx, far = 0, -1
            for k, f in enumerate(mem):
                distance = future.index(f["page"]) if f["page"] in future else len(refs)
                if distance > far:
                    idx, far = k, distance
        else:
            idx, low = 0, 1 << 20
            for k, f in enumerate(mem):
                key = (256 if f["r"] else 0) + f["count"]
                if key < low:
                    idx, low = k, key
        victims.append(mem[idx]["page"])
        write_backs += bool(mem[idx]["m"])
        mem[idx] = new
    return faults, write_backs, victims


def test_model_matches_the_straight_line_model():
    rng = random.Random(11)
    for _ in range(2000):
        frames = rng.randint(1, 5)
        refs = [(rng.randrange(frames + 3), rng.random() < 0.3) for _ in range(rng.randint(1, 40))]
        for policy in Policy:
            outcome = simulate(policy, refs, frames)
            faults, write_backs, victims = straight_line(policy.value, refs, frames)
            assert (outcome.counts.faults, outcome.counts.write_backs) == (faults, write_backs), (policy, refs)
            assert [s.victim for s in outcome.steps] == victims


def test_replace_quiz_against_the_straight_line_model():
    seen = set()
    for seed in range(3000):
        for ex in make_quiz(seed, 4):
            seen.add(ex.topic)
            faults, write_backs, victims = straight_line(ex.policy.value, ex.refs, ex.frames)
            if ex.topic == "faults":
                assert ex.answer() == faults
            elif ex.topic == "write-backs":
                assert ex.answer() == write_backs
            elif ex.topic == "victim":
                assert ex.step is not None and victims[ex.step - 1] is not None
                assert ex.answer() == victims[ex.step - 1]
            else:
                more = straight_line("fifo", ex.refs, ex.frames + 1)[0]
                assert ex.answer() == (faults, more)
    assert seen == set(TOPICS)


def test_replace_quiz_cli(capsys):
    assert main(["lab", "replace-quiz", "--seed", "5", "--count", "2", "--topic", "anomaly", "--solve"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("hwsim lab replace-quiz --seed 5 --count 2 --topic anomaly --solve\n")
    assert "Answer: " in out
    assert main(["lab", "replace-quiz", "--seed", "5", "--json", "--solve"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [e["number"] for e in data["exercises"]] == [1, 2, 3]


def test_parse_refs():
    assert parse_refs("1 2w, 3") == [(1, False), (2, True), (3, False)]
    with pytest.raises(ValueError, match="not a page number: 'x'"):
        parse_refs("1 x")
    assert list(itertools.islice(get_workload("belady"), 3)) == [(1, False), (2, False), (3, False)]


def test_replace_questions_in_a_graded_course(tmp_path, capsys):
    (tmp_path / "roster.txt").write_text("ann\nben\n")
    out, answers = tmp_path / "course", tmp_path / "answers"
    roster = str(tmp_path / "roster.txt")
    args = ["quiz", "make", "--roster", roster, "--out", str(out), "--course-seed", "3", "--mmu", "0"]
    assert main([*args, "--tlb", "0", "--iommu", "0", "--replace", "6"]) == 0
    sheet = (out / "sheets" / "ann.txt").read_text()
    assert "Page-replacement questions, parts (numbers):" in sheet and "Question 6: page replacement" in sheet
    answers.mkdir()
    for student, shift in (("ann", 0), ("ben", 1)):  # ann answers right, ben one off everywhere
        key = json.loads((out / "keys" / f"{student}.json").read_text())
        lines = [f"student: {student}", f"sheet: {key['sheet']}"]
        for q in key["questions"]:
            lines += [f"{q['number']}.{part}: {int(value) + shift}" for part, value in q["parts"].items()]
            assert q["quiz"] == "replace"
        (answers / f"{student}.txt").write_text("\n".join(lines) + "\n")
    assert main(["quiz", "grade", str(out), str(answers)]) == 0
    capsys.readouterr()
    rows = (out / "gradebook.csv").read_text().splitlines()
    assert rows[0] == "student,file,score,out_of,q1,q2,q3,q4,q5,q6,problems"
    assert rows[1].startswith("ann,") and rows[1].split(",")[2:] == ["6", "6", "1", "1", "1", "1", "1", "1", "0"]
    assert rows[2].startswith("ben,") and rows[2].split(",")[2:] == ["0", "6", "0", "0", "0", "0", "0", "0", "0"]


def test_page_mapped_without_swap_in_is_named(tmp_path):
    elf = _variant(tmp_path, "fifo", "    lab_swap_in(page, frame);\n", "")
    run = paging.run_handler(elf, get_workload("loop"), frames=4)
    assert run.error == (
        "data check at reference 1: page 1 reads 0x0 (page 0, version 0), expected 0x100000000 (page 1, version 0): "
        "frame 1 was mapped for page 1 without lab_swap_in(page, frame)"
    )


def test_golden_transcripts(tmp_path, capsys, monkeypatch):
    """The outputs docs/teaching.md shows."""
    from golden import check_golden

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert main(["lab", "paging", "run", "--solution", "clock", "--workload", "shift"]) == 0
    check_golden("lab_paging_run_clock_shift.txt", capsys.readouterr().out)
    assert main(["lab", "replace-quiz", "--seed", "22", "--count", "2", "--topic", "victim", "--solve"]) == 0
    check_golden("replace_quiz_22_victim.txt", capsys.readouterr().out)


def test_handler_crash_is_reported_with_the_cpu_fault(tmp_path):
    elf = _variant(tmp_path, "fifo", "lab_swap_in(page, frame);", "lab_swap_in(page, frame); *(volatile int *)8 = 1;")
    run = paging.run_handler(elf, get_workload("belady"), frames=3)
    assert run.error is not None
    first = run.error.splitlines()[0]
    assert first.startswith("lab_page_fault crashed in lab_page_fault+0x") and first.endswith(
        "store page fault (cause 15) at va 0x8"
    )
    assert "V=0: not valid -> page fault" in run.error  # the walk that explains it


def test_setup_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    lab = tmp_path / "lab"
    lab.mkdir()
    (lab / "handler.c").write_text('#include "lab.h"\nvoid lab_page_fault(const struct lab *l, uint64_t v, int s) {}\n')
    with pytest.raises(
        paging.LabError, match=r"lab\.elf: the handler does not define lab_init, lab_tick \(see lab\.h\)"
    ):
        paging.run_handler(paging.build_handler(lab).read_bytes(), [(0, False)], frames=1, name="lab.elf")
    (lab / "handler.c").write_text("this is not C\n")
    with pytest.raises(paging.LabError, match="building .* failed:"):
        paging.build_handler(lab)
    assert main(["lab", "paging", "run", str(tmp_path / "nowhere")]) == 2
    assert "does not exist (make one: hwsim lab paging init DIR)" in capsys.readouterr().err
    assert main(["lab", "paging", "run", "--solution", "fifo", "--refs", "1 x"]) == 2
    assert "--refs: not a page number: 'x'" in capsys.readouterr().err
    with pytest.raises(paging.LabError, match="frames must be from 1 to 64, not 0"):
        paging.PagingLab(b"", frames=0, npages=1)


def test_adding_w_without_sfence_loops_and_says_why(tmp_path):
    """Software dirty bits: map read-only, add W on the store fault; without sfence.vma the TLB keeps the
    read-only entry."""
    fixup = (
        "    pte_t *mine = lab_pte(lab, lab_page_of(lab, va));\n"
        "    if (is_store && (*mine & PTE_V)) { *mine |= PTE_W; return; }\n"
    )
    source = paging.solution_source("fifo").read_text()
    source = source.replace("    (void)is_store;\n", fixup).replace("PTE_U | PTE_R | PTE_W", "PTE_U | PTE_R")
    lab = tmp_path / "lab"
    lab.mkdir()
    (lab / "handler.c").write_text(source)
    run = paging.run_handler(paging.build_handler(lab).read_bytes(), get_workload("loop"), frames=4)
    assert run.error is not None and run.error.startswith(
        "fault loop: reference 0 (store of page 0) faulted 4 times in a row: its PTE (0x"
    )
    assert run.error.endswith(
        "allows the access, but the TLB still holds the old one (0x"
        + run.error.split("(0x")[2].split(")")[0]
        + "), and the CPU faults on that: a PTE the TLB may hold needs sfence.vma after any change, adding a "
        "permission too"
    )
    (lab / "handler.c").write_text(source.replace("*mine |= PTE_W; return;", "*mine |= PTE_W; sfence_vma(va); return;"))
    run = paging.run_handler(paging.build_handler(lab).read_bytes(), get_workload("loop"), frames=4)
    assert run.error is None and run.faults == 60 + 10  # ten writes, each a second fault on its page
