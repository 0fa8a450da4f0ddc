"""``hwsim iommu ...``: IOMMU exercises (quiz)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from .quiz import add_quiz_parser

    iommu = sub.add_parser("iommu", help="generate RISC-V IOMMU exercises (device directory, IO page tables, DMA)")
    iommu_sub = iommu.add_subparsers(dest="iommu_command", metavar="SUBCOMMAND", required=True)
    add_quiz_parser(
        iommu_sub,
        "quiz",
        "hwsim.teach.iommu_quiz",
        help="generate IOMMU exercises from a seed (--solve: the model's answer, worked out)",
        description="Print IOMMU exercises: a RAM holding a device directory and IO page tables, a "
        "ddtp value and one DMA request (device ID, read or write, IOVA, length).  The "
        "answer is where the bytes go, or the fault record the IOMMU queues; --solve "
        "prints it as hwsim's IOMMU model decides it, with the directory and page walks.",
    )
