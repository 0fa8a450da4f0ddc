"""teach/shootdown_quiz.py (hwsim mmu tlb-quiz --harts N): answers against a plain per-hart LRU model, golden transcript."""

from __future__ import annotations

import json

import pytest
from golden import check_golden

from hwsim.cli import main
from hwsim.mmu.bits import PAGE_SIZE
from hwsim.teach.shootdown_quiz import make_exercise

PAGE = ~(PAGE_SIZE - 1)


def plain_model(ex):
    """The sequence on lists: one LRU list of (page va, page pa) per hart (most recent last), a dict page
    table.  Per step: (kind, hit?, pa or 'fault', stale hit?, evicted, removed, holders of a stale entry)."""
    table = {p.va: p.pa for p in ex.pages}
    tlbs = [[] for _ in range(ex.harts)]
    out = []
    for op in ex.ops:
        if op.kind == "access":
            tlb, page = tlbs[op.hart], op.va & PAGE
            cached = next((e for e in tlb if e[0] == page), None)
            if cached is not None:
                tlb.remove(cached)
                tlb.append(cached)
                step = ("hit", cached[1] | (op.va & ~PAGE), table.get(page) != cached[1], (), ())
            elif page in table:
                evicted = ()
                if len(tlb) == ex.capacity:
                    evicted = (tlb.pop(0)[0],)
                tlb.append((page, table[page]))
                step = ("miss", table[page] | (op.va & ~PAGE), False, evicted, ())
            else:
                step = ("miss", "fault", False, (), ())
        elif op.kind in ("sfence", "ipi"):
            tlb = tlbs[op.target if op.kind == "ipi" else op.hart]
            removed = tuple(e[0] for e in tlb if op.va is None or e[0] == op.va & PAGE)
            tlb[:] = [e for e in tlb if e[0] not in removed]
            step = (op.kind, None, False, (), removed)
        else:
            if op.kind == "remap":
                table[op.va] = op.pa
            else:
                del table[op.va]
            step = (op.kind, None, False, (), ())
        stale = tuple(h for h, tlb in enumerate(tlbs) if any(table.get(va) != pa for va, pa in tlb))
        out.append((*step, stale))
    return out


def model_view(ex):
    """The same tuple from hwsim's answer (ShootdownExercise.solve)."""
    out = []
    for step in ex.solve():
        op = step.op
        stale = tuple(h for h, entries in enumerate(step.stale) if entries)
        if op.kind == "access":
            if step.hit is not None:
                stale_hit = step.walked is None or step.walked.page_pa != step.hit.page_pa
                out.append(("hit", step.hit.pa_of(op.va), stale_hit, (), (), stale))
            elif step.fault is not None:
                out.append(("miss", "fault", False, (), (), stale))
            else:
                evicted = tuple(tr.page_va for _a, tr in step.evicted)
                out.append(("miss", step.filled.pa_of(op.va), False, evicted, (), stale))
        else:
            removed = tuple(tr.page_va for _a, tr in step.removed)
            out.append((op.kind, None, False, (), removed, stale))
    return out


@pytest.mark.parametrize("harts", [2, 3])
def test_answers_agree_with_a_plain_model_on_thousands_of_exercises(harts):
    counts = {"stale hits": 0, "stale at the end": 0, "clean at the end": 0, "ipis": 0}
    for seed in range(1500 if harts == 2 else 500):
        ex = make_exercise(seed, 1 + seed % 3, harts)
        model = plain_model(ex)
        assert model_view(ex) == model, (seed, ex)
        counts["stale hits"] += sum(1 for s in model if s[0] == "hit" and s[2])
        counts["stale at the end" if model[-1][-1] else "clean at the end"] += 1
        counts["ipis"] += sum(1 for op in ex.ops if op.kind == "ipi")
    assert all(counts.values()), counts  # the exercises cover both outcomes


def test_the_change_step_names_the_stale_harts_and_the_fences_and_ipis_needed():
    from hwsim.teach.shootdown_quiz import describe_step

    seen = set()
    for seed in range(300):
        ex = make_exercise(seed, 1)
        steps = ex.solve()
        (i,) = [n for n, s in enumerate(steps) if s.op.kind in ("remap", "unmap")]
        change = steps[i]
        holders = [h for h, stale in enumerate(change.stale) if stale]
        text = describe_step(ex, change)
        if not holders:
            assert text == "no hart holds the page: no fence or IPI is needed"
            seen.add("none")
            continue
        for h in holders:
            if h == change.op.hart:
                assert f"hart {h} (it changed the PTE): sfence.vma {change.op.va:#x}, x0" in text
                seen.add("local")
            else:
                assert f"hart {h}: an IPI from hart {change.op.hart}, whose handler runs sfence.vma" in text
                seen.add("ipi")
    assert seen == {"none", "local", "ipi"}


def test_golden_transcript(capsys):
    assert main(["mmu", "tlb-quiz", "--harts", "2", "--seed", "4", "--count", "2", "--solve"]) == 0
    check_golden("tlb_quiz_harts2_seed4_solve.txt", capsys.readouterr().out)


def test_json_and_errors(capsys):
    assert main(["mmu", "tlb-quiz", "--harts", "2", "--seed", "5", "--count", "1", "--json", "--solve"]) == 0
    j = json.loads(capsys.readouterr().out)
    ex = j["exercises"][0]
    assert j["command"] == "hwsim mmu tlb-quiz --seed 5 --count 1 --harts 2" and ex["harts"] == 2
    assert len(ex["answers"]) == len(ex["ops"]) and ex["topic"] == "shootdown"
    assert main(["mmu", "tlb-quiz", "--harts", "5", "--seed", "1"]) == 2
    assert "--harts must be from 2 to 4, not 5" in capsys.readouterr().err
    assert main(["mmu", "tlb-quiz", "--harts", "2", "--seed", "1", "--sets", "2"]) == 2
    assert "--harts has exercises of its own" in capsys.readouterr().err
