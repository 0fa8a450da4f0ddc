"""Golden transcripts of the second-edition exercises: two-stage, Sv57/Svnapot/Svpbmt, TLB geometry."""

from __future__ import annotations

import pytest
from golden import check_golden

from hwsim.cli import main


@pytest.mark.parametrize(
    "argv, golden",
    [
        (["two-stage-quiz", "--seed", "4", "--count", "2", "--solve"], "two_stage_quiz_seed4_solve.txt"),
        (["two-stage-quiz", "--seed", "9", "--topic", "g-fault-pte", "--topic", "bare"], "two_stage_quiz_seed9.txt"),
        (["ext-quiz", "--seed", "5", "--count", "3", "--solve"], "ext_quiz_seed5_solve.txt"),
        (
            ["tlb-quiz", "--seed", "3", "--count", "1", "--sets", "2", "--ways", "2", "--policy", "fifo", "--split"]
            + ["--difficulty", "easy", "--solve"],
            "tlb_quiz_seed3_2x2_fifo_split_easy_solve.txt",
        ),
    ],
)
def test_golden_transcripts(argv, golden, capsys):
    assert main(["mmu", *argv]) == 0
    check_golden(golden, capsys.readouterr().out)
