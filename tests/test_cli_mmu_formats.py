"""``hwsim mmu walk --format`` and ``hwsim mmu quiz --format`` for x86-64 and AArch64: output, exit
codes, tables from an image or a JSON file, a quiz exercise walked again, and bad input refused
with one clear error."""

from __future__ import annotations

import json
import struct

import pytest

from hwsim.cli import main
from hwsim.teach import arm_quiz

B = 0x100000
# x86-64: PML4 at B, PDPT at B+0x1000, PD at B+0x2000 whose entry 1 maps a 2 MiB user page (A=1, D=0).
X86_WORDS = {B: B + 0x1007, B + 0x1000: B + 0x2007, B + 0x2008: 0x4000A7}
# AArch64 4 KiB: L0 at B+0x4000, L1, L2 whose entry 1 is a 2 MiB block, AP=01 (EL0 read/write), AF=1.
ARM_WORDS = {B + 0x4000: B + 0x5003, B + 0x5000: B + 0x6003, B + 0x6008: 0x4000_0441}


@pytest.fixture
def tables(tmp_path):
    path = tmp_path / "tables.json"
    words = {**X86_WORDS, **ARM_WORDS}
    path.write_text(
        json.dumps({"ram": {"base": hex(B), "size": "0x10000"}, "memory": {hex(a): hex(v) for a, v in words.items()}})
    )
    return str(path)


@pytest.fixture
def image(tmp_path):
    data = bytearray(0x10000)
    for addr, value in {**X86_WORDS, **ARM_WORDS}.items():
        struct.pack_into("<Q", data, addr - B, value)
    path = tmp_path / "mem.bin"
    path.write_bytes(bytes(data))
    return str(path)


def x86(tables, *extra):
    return ["mmu", "walk", "--format", "x86-64", "--tables", tables, "--cr3", hex(B), *extra]


def arm(tables, *extra):
    return ["mmu", "walk", "--format", "aarch64-4k", "--tables", tables, "--ttbr0", hex(B + 0x4000), *extra]


def test_x86_walk_text_explain_and_json(tables, capsys):
    assert main(x86(tables, "--va", "0x201234", "--access", "store", "--priv", "U")) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "cr3 0x100000: PML4 table at 0x100000 (PWT=0 PCD=0); x86-64 4-level paging"
    assert out[1] == "va 0x0000000000201234: write in user mode (CPL=3)"
    assert out[2:5] == [
        "  PML4E @ 0x100000 = 0x0000000000101007  the page-directory-pointer table at 0x101000",
        "  PDPTE @ 0x101000 = 0x0000000000102007  the page directory at 0x102000",
        "  PDE @ 0x102008 = 0x00000000004000a7  maps a 2 MiB page",
    ]
    assert out[5].startswith("result: pa 0x401234 (2 MiB page); the hardware would set (not written): ")
    assert main(x86(tables, "--va", "0x201234", "--access", "fetch", "--priv", "S", "--smep", "--explain")) == 1
    out = capsys.readouterr().out
    assert "rights over all 3 entries: U/S=1 (user-mode address), R/W=1, XD=0" in out
    assert out.rstrip().endswith(
        "result: #PF at the PDE, error code 0x11 (P=1 W/R=0 U/S=0 RSVD=0 I/D=1 PK=0), CR2=0x201234: "
        "supervisor-mode instruction fetch from a user-mode address with CR4.SMEP=1"
    )
    assert main(x86(tables, "--va", "0x201234", "--access", "load", "--priv", "U", "--pkru", "0x1", "--json")) == 1
    j = json.loads(capsys.readouterr().out)
    assert j["fault"]["code"] == "0x25" and j["fault"]["kind"] == "page fault" and len(j["steps"]) == 3
    assert main(x86(tables, "--va", "0x800000000000", "--access", "load", "--priv", "U")) == 1
    assert capsys.readouterr().out.splitlines()[-1].startswith("result: #GP(0): linear address is not canonical")


def test_arm_walk_from_an_image_and_ttbr1(image, capsys):
    args = ["mmu", "walk", "--format", "aarch64-4k", "--image", image, "--base", hex(B), "--ttbr0", hex(B + 0x4000)]
    assert main([*args, "--va", "0x201234", "--access", "store", "--priv", "U"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "result: pa 0x40001234 (2 MiB block)"
    assert main([*args, "--va", "0x201234", "--access", "fetch", "--priv", "S", "--explain"]) == 1
    out = capsys.readouterr().out
    assert "effective permissions: AP[2:1]=01 (EL1 read/write, EL0 read/write), UXN=0, PXN=0" in out
    assert (
        "result: instruction abort from EL1: permission fault, level 2 (IFSC 0x0e), ESR_EL1=0x8600000e, "
        "FAR_EL1=0x201234: EL1 instruction fetch from a page writable at EL0" in out
    )
    assert main([*args, "--va", "0x201234", "--access", "load", "--priv", "S", "--pan"]) == 1
    assert "with PSTATE.PAN=1" in capsys.readouterr().out
    assert main([*args, "--va", "0xffff000000201234", "--access", "load", "--priv", "S"]) == 2
    assert "it is translated with --ttbr1, not given" in capsys.readouterr().err


def test_a_quiz_exercise_walks_again_from_its_json(tmp_path, capsys):
    assert main(["mmu", "quiz", "--format", "x86-64-5level", "--seed", "4", "--count", "1", "--json", "--solve"]) == 0
    ex = json.loads(capsys.readouterr().out)["exercises"][0]
    path = tmp_path / "ex.json"
    path.write_text(json.dumps(ex))
    c = ex["controls"]
    args = ["mmu", "walk", "--format", "x86-64-5level", "--tables", str(path), "--cr3", ex["cr3"], "--va", ex["va"]]
    args += ["--access", ex["access"], "--priv", ex["priv"], "--maxphyaddr", str(c["maxphyaddr"]), "--json"]
    args += [
        flag
        for flag, on in (
            ("--no-wp", not c["wp"]),
            ("--no-nxe", not c["nxe"]),
            ("--smep", c["smep"]),
            ("--smap", c["smap"]),
            ("--ac", c["ac"]),
        )
        if on
    ]
    if c["pke"]:
        args += ["--pkru", c["pkru"]]
    main(args)
    assert json.loads(capsys.readouterr().out) == ex["walk"]


def test_quiz_formats_print_and_solve(capsys):
    for fmt in ("x86-64", "x86-64-5level", "aarch64-4k", "aarch64-16k", "aarch64-64k"):
        assert main(["mmu", "quiz", "--format", fmt, "--seed", "11", "--count", "2"]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"hwsim mmu quiz --format {fmt} --seed 11 --count 2\n")
        assert f"Answers: hwsim mmu quiz --format {fmt} --seed 11 --count 2 --solve" in out
        assert main(["mmu", "quiz", "--format", fmt, "--seed", "11", "--count", "2", "--solve"]) == 0
        solved = capsys.readouterr().out
        assert solved.count("Worked solution:") == 2
    assert main(["mmu", "quiz", "--format", "aarch64-64k", "--seed", "1", "--count", "1", "--topic", "pan"]) == 0
    assert "PSTATE.PAN" in capsys.readouterr().out and "pan" in arm_quiz.TOPICS


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--format", "x86-64", "--va", "0x1000", "--access", "load", "--priv", "U"],
            "--format x86-64 reads its tables from --image FILE --base ADDR or --tables FILE",
        ),
        (
            ["--format", "x86-64", "--tables", "TABLES", "--va", "0x1000", "--access", "load", "--priv", "U"],
            "--format x86-64 needs --cr3 (the root table's address)",
        ),
        (
            [
                "--format",
                "x86-64",
                "--tables",
                "TABLES",
                "--cr3",
                "0x100000",
                "--ttbr0",
                "0x1000",
                "--va",
                "0",
                "--access",
                "load",
                "--priv",
                "U",
            ],
            "--ttbr0 goes with an AArch64 --format, not x86-64",
        ),
        (
            [
                "--format",
                "aarch64-16k",
                "--tables",
                "TABLES",
                "--cr3",
                "0x1000",
                "--smep",
                "--va",
                "0",
                "--access",
                "load",
                "--priv",
                "U",
            ],
            "--cr3, --smep go with an x86-64 --format, not aarch64-16k",
        ),
        (
            "--format x86-64 --tables TABLES --cr3 0x1000 --hgatp 0 --svpbmt --va 0 --access load --priv U".split(),
            "--hgatp, --svpbmt go with RISC-V page tables, not --format x86-64",
        ),
        (
            "--format aarch64-4k --tables TABLES --ttbr0 0x1000 --svnapot --va 0 --access load --priv U".split(),
            "--svnapot goes with RISC-V page tables, not --format aarch64-4k",
        ),
        (
            [
                "--format",
                "aarch64-4k",
                "--tables",
                "TABLES",
                "--ttbr0",
                "0x1000",
                "--t0sz",
                "8",
                "--va",
                "0",
                "--access",
                "load",
                "--priv",
                "U",
            ],
            "TCR_EL1.T0SZ=8 is out of range: 16 to 39",
        ),
        (
            [
                "--format",
                "aarch64-4k",
                "--tables",
                "TABLES",
                "--ttbr0",
                "0x1000",
                "--pa-bits",
                "47",
                "--va",
                "0",
                "--access",
                "load",
                "--priv",
                "U",
            ],
            "PA size 47 is not one TCR_EL1.IPS encodes",
        ),
        (
            [
                "--format",
                "x86-64",
                "--tables",
                "TABLES",
                "--cr3",
                "0x100000",
                "--maxphyaddr",
                "60",
                "--va",
                "0",
                "--access",
                "load",
                "--priv",
                "U",
            ],
            "--maxphyaddr 60 is out of range: 36 to 52",
        ),
        (
            [
                "--format",
                "x86-64",
                "--tables",
                "TABLES",
                "--cr3",
                "0x100000",
                "--sum",
                "--va",
                "0",
                "--access",
                "load",
                "--priv",
                "U",
            ],
            "--sum goes with --format sv39 (RISC-V), not x86-64",
        ),
        (
            ["--tables", "TABLES", "--satp", "0x0", "--va", "0", "--access", "load", "--priv", "U"],
            "--tables goes with an x86-64 or AArch64 --format, not sv39",
        ),
        (
            [
                "--format",
                "x86-64",
                "--tables",
                "BAD",
                "--cr3",
                "0x100000",
                "--va",
                "0",
                "--access",
                "load",
                "--priv",
                "U",
            ],
            "not JSON",
        ),
        (
            [
                "--format",
                "x86-64",
                "--tables",
                "UNALIGNED",
                "--cr3",
                "0x100000",
                "--va",
                "0",
                "--access",
                "load",
                "--priv",
                "U",
            ],
            "memory address 0x100004 is not 8-byte aligned",
        ),
        (
            [
                "--format",
                "x86-64",
                "--tables",
                "MISSING",
                "--cr3",
                "0x100000",
                "--va",
                "0",
                "--access",
                "load",
                "--priv",
                "U",
            ],
            "cannot read tables",
        ),
    ],
)
def test_bad_input_is_one_clear_error(tables, tmp_path, capsys, args, message):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    unaligned = tmp_path / "unaligned.json"
    unaligned.write_text(json.dumps({"ram": {"base": hex(B), "size": "0x1000"}, "memory": {hex(B + 4): "0x1"}}))
    names = {"TABLES": tables, "BAD": str(bad), "UNALIGNED": str(unaligned), "MISSING": str(tmp_path / "none")}
    assert main(["mmu", "walk", *[names.get(a, a) for a in args]]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and "Traceback" not in captured.err and not captured.out


def test_quiz_html_is_refused_for_other_formats(tmp_path, capsys):
    assert main(["mmu", "quiz", "--format", "aarch64-4k", "--html", str(tmp_path / "q.html")]) == 2
    assert "--html is not available with --format aarch64-4k" in capsys.readouterr().err
    assert not (tmp_path / "q.html").exists()


def test_quiz_topic_of_another_format_is_refused(capsys):
    assert main(["mmu", "quiz", "--format", "x86-64", "--topic", "pan"]) == 2
    err = capsys.readouterr().err
    assert "topic 'pan' is not one of --format x86-64's: page, large-page," in err and "Traceback" not in err


def test_dump_formats(tables, capsys):
    assert main(["mmu", "dump", "--format", "x86-64", "--tables", tables, "--cr3", hex(B)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "cr3 0x100000: x86-64 4-level paging, PML4 table at 0x100000"
    assert out[-1] == "      └─ [0x001] va 0x200000-0x3fffff  2 MiB page -> pa 0x400000-0x5fffff  PWUA---"
    assert main(["mmu", "dump", "--format", "aarch64-4k", "--tables", tables, "--ttbr0", hex(B + 0x4000)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[2] == "TTBR0_EL1 0x104000: 48-bit VAs, level-0 table at 0x104000"
    assert out[-1] == "      └─ [0x001] va 0x200000-0x3fffff  2 MiB block -> pa 0x40000000-0x401fffff  AP=01 Ag---"
    assert main(["mmu", "dump", "--format", "aarch64-4k", "--tables", tables, "--ttbr0", "0x0", "--json"]) == 2
    assert "--json goes with --format sv39; aarch64-4k dumps as text" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("golden", "args"),
    [
        ("x86_quiz_seed1_solve.txt", ["mmu", "quiz", "--format", "x86-64", "--seed", "1", "--count", "2", "--solve"]),
        ("x86_5level_quiz_seed2.txt", ["mmu", "quiz", "--format", "x86-64-5level", "--seed", "2", "--count", "2"]),
        (
            "arm_quiz_seed1_solve.txt",
            ["mmu", "quiz", "--format", "aarch64-4k", "--seed", "1", "--count", "2", "--solve"],
        ),
        (
            "arm_64k_quiz_seed3_topics_solve.txt",
            [
                "mmu",
                "quiz",
                "--format",
                "aarch64-64k",
                "--seed",
                "3",
                "--count",
                "2",
                "--topic",
                "table-attrs",
                "--topic",
                "contiguous",
                "--solve",
            ],
        ),  # fmt: skip
        (
            "x86_walk_explain.txt",
            [
                "mmu",
                "walk",
                "--format",
                "x86-64",
                "--tables",
                "examples/page-tables/x86-64.json",
                "--cr3",
                "0x100000",
                "--va",
                "0x11008",
                "--access",
                "store",
                "--priv",
                "U",
                "--pkru",
                "0x8",
                "--explain",
            ],
        ),  # fmt: skip
        (
            "arm_dump.txt",
            [
                "mmu",
                "dump",
                "--format",
                "aarch64-4k",
                "--tables",
                "examples/page-tables/aarch64-4k.json",
                "--ttbr0",
                "0x100000",
                "--ttbr1",
                "0x104000",
            ],
        ),  # fmt: skip
    ],
)
def test_golden_transcripts(golden, args, capsys, monkeypatch):
    from pathlib import Path

    from golden import check_golden

    monkeypatch.chdir(Path(__file__).parent.parent)
    main(args)
    check_golden(golden, capsys.readouterr().out)
