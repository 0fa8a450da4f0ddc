"""``hwsim mmu ...``: page-table inspection and exercises (walk, dump, quiz, tlb-quiz).

Where the page tables come from (``walk`` and ``dump``)::

    --image FILE --base ADDR --satp VALUE   a raw physical-memory image
    --snapshot FILE                         tables saved by ``hwsim mmu dump --save-snapshot``
    --board BOARD --demo                    a live board: a small U-mode guest runs on the CPU first
    --board BOARD --driver DRIVER           a live board: a sandboxed driver's probe() runs first
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import ExitStack
from dataclasses import dataclass, field

from ..errors import ConfigError
from ..mmu.bits import (
    FLAGS_LEGEND,
    PAGE_SHIFT,
    PAGING_MODES,
    SATP_MODE_BARE,
    TEACHING_MODES,
    PagingMode,
    satp_fields,
)
from ..mmu.image import ImageMemory
from ..mmu.report import format_walk, format_walk_explained, plural, walk_to_json
from ..mmu.walker import AdPolicy, PteMemory, walk
from ..riscv.priv import Access, Priv
from .mmu_arch import add_format_options, check_sv39_args, run_arch_dump, run_arch_walk


def _add_source(p: argparse.ArgumentParser, int_arg) -> None:
    g = p.add_argument_group("page tables (one of --image, --snapshot, --board)")
    g.add_argument("--image", help="raw memory image; its first byte is at physical address --base")
    g.add_argument("--base", type=int_arg, help="physical address of the image's first byte (with --image)")
    g.add_argument("--satp", type=int_arg, help="satp value: MODE, ASID, root PPN (with --image)")
    g.add_argument("--snapshot", metavar="FILE", help="a page-table snapshot (hwsim mmu dump --save-snapshot)")
    g.add_argument(
        "--board", metavar="BOARD", help="a board file or the name of one of hwsim's (virt); with --demo or --driver"
    )
    g.add_argument(
        "--demo",
        action="store_true",
        help="with --board: run a small U-mode guest on the board's CPU, then use its page tables",
    )
    g.add_argument(
        "--driver",
        metavar="DRIVER",
        help="with --board: run a sandboxed driver's probe() (a .wasm, or a C driver directory, built "
        "on the fly), then use the wasm runtime's page tables",
    )


def register(sub: argparse._SubParsersAction) -> None:
    from . import int_arg

    mmu = sub.add_parser("mmu", help="inspect page tables and translations; generate MMU exercises")
    mmu_sub = mmu.add_subparsers(dest="mmu_command", metavar="SUBCOMMAND", required=True)
    w = mmu_sub.add_parser(
        "walk",
        help="translate one virtual address, level by level (memory image, snapshot or live board)",
        description="Walk the page tables (in a raw memory image, a snapshot, or a live board after a guest ran) "
        "and print the VA's fields, each level's PTE and the result.  With --format x86-64, x86-64-5level, "
        "aarch64-4k, aarch64-16k or aarch64-64k: x86-64 or AArch64 tables in --image or --tables, with "
        "their registers (--cr3; --ttbr0/--ttbr1).  Exit status 0 when the address translates, 1 on a fault.",
    )
    _add_source(w, int_arg)
    w.add_argument("--va", required=True, type=int_arg, help="virtual address to translate")
    w.add_argument("--access", required=True, choices=[a.value for a in Access])
    w.add_argument("--priv", required=True, choices=["U", "S", "u", "s"], help="privilege of the access")
    w.add_argument("--sum", action="store_true", help="mstatus.SUM=1 (S-mode may load/store user pages)")
    w.add_argument("--mxr", action="store_true", help="mstatus.MXR=1 (loads from executable pages allowed)")
    w.add_argument(
        "--ad",
        choices=["update", "fault"],
        default="update",
        help="A/D bits clear: 'update' as hardware does (default), or 'fault' (Svade)",
    )
    w.add_argument(
        "--update-ad",
        action="store_true",
        help="with --image: write the A/D update into the image (without it the image is never written)",
    )
    w.add_argument(
        "--explain",
        action="store_true",
        help="a worked solution: the VA drawn as bit fields, each PTE address computed, each PTE "
        "decoded field by field",
    )
    w.add_argument("--json", action="store_true", help="print one JSON object")
    add_format_options(w, int_arg, walk=True)
    x = w.add_argument_group("teaching extensions (the emulated CPU and the IOMMU implement none of them)")
    x.add_argument("--svnapot", action="store_true", help="Svnapot: N=1 leaves at level 0 map 64 KiB NAPOT pages")
    x.add_argument("--svpbmt", action="store_true", help="Svpbmt: PBMT (bits 62:61) in leaves, 3 reserved")
    h = w.add_argument_group("two-stage translation (hypervisor extension; with --image)")
    h.add_argument(
        "--hgatp",
        type=int_arg,
        help="translate for a guest: --satp is then vsatp (VS-stage, guest-physical tables) and this hgatp "
        "(MODE 8 Sv39x4 or 9 Sv48x4, or 0 Bare) the G-stage; --priv U/S mean VU/VS-mode",
    )
    h.add_argument("--vs-mxr", action="store_true", help="vsstatus.MXR=1 (VS-stage only; --mxr is mstatus.MXR)")
    w.set_defaults(func=run_walk)

    d = mmu_sub.add_parser(
        "dump",
        help="print the page-table tree (text, JSON, or a self-contained HTML drawing)",
        description="Print every table under the root: valid entries only, runs of pages with the same flags "
        "collapsed, superpages marked, and PTEs that a walk would fault on flagged with the reason.",
    )
    _add_source(d, int_arg)
    d.add_argument("--json", action="store_true", help="print the tree as one JSON object")
    d.add_argument(
        "--html",
        metavar="FILE",
        help="also write a self-contained interactive HTML page: the tree drawn, a step-through walk with access, "
        "privilege, SUM/MXR and A/D selectors (open FILE#va=0x... to start with that walk)",
    )
    d.add_argument(
        "--save-snapshot",
        metavar="FILE",
        help="also save the tables as a snapshot file, for later --snapshot walks and dumps",
    )
    add_format_options(d, int_arg, walk=False)
    d.set_defaults(func=run_dump)

    from .quiz import add_quiz_parser

    add_quiz_parser(
        mmu_sub,
        "quiz",
        "hwsim.teach.mmu_quiz",
        formats={
            "sv39": "hwsim.teach.mmu_quiz",
            "x86-64": "hwsim.teach.x86_quiz",
            "x86-64-5level": "hwsim.teach.x86_quiz",
            "aarch64-4k": "hwsim.teach.arm_quiz",
            "aarch64-16k": "hwsim.teach.arm_quiz",
            "aarch64-64k": "hwsim.teach.arm_quiz",
        },
        help="generate translation exercises from a seed: Sv39, or --format x86-64/AArch64 (--solve: worked answers)",
        description="Print Sv39 address-translation exercises: page tables in a small RAM as hex, a "
        "satp, an access (VA, fetch/load/store, U or S mode, SUM, MXR) and the A/D rule.  "
        "The answer is the physical address or the exception (cause, level, reason); "
        "--solve prints it, worked out level by level by hwsim's walker.  --format x86-64, x86-64-5level, "
        "aarch64-4k, aarch64-16k or aarch64-64k: the same for x86-64 paging (the answer: a PA, #GP, or #PF with "
        "its error code) or AArch64 stage 1 (a PA, or the abort: fault, level, DFSC/IFSC, ESR_EL1).",
    )
    add_quiz_parser(
        mmu_sub,
        "two-stage-quiz",
        "hwsim.teach.twostage_quiz",
        help="generate two-stage (hypervisor) translation exercises: Sv39 over Sv39x4, reads counted",
        description="Print two-stage translation exercises: a host RAM holding a G-stage (hgatp, Sv39x4) "
        "and a guest's VS-stage tables (vsatp, Sv39) as hex, and one access from VS- or VU-mode.  The "
        "answer is the physical address (and the guest-physical one) or the exception (cause, stage, "
        "level, htval), and the number of page-table reads; --solve works it out, every G-stage walk "
        "nested under the VS-stage PTE it serves.",
    )
    add_quiz_parser(
        mmu_sub,
        "ext-quiz",
        "hwsim.teach.ext_quiz",
        help="generate Sv57, Svnapot and Svpbmt exercises (teaching only: the emulated CPU has none of them)",
        description="Print translation exercises on Sv57 (satp MODE 10), Svnapot (64 KiB NAPOT pages) and "
        "Svpbmt (memory types): page tables in a small RAM as hex, satp, one access and which extensions "
        "are on.  The answer (--solve) is the physical address, the page size and memory type, or the "
        "page fault with its level, worked out by hwsim's walker.",
    )
    tlb_quiz = add_quiz_parser(
        mmu_sub,
        "tlb-quiz",
        "hwsim.teach.tlb_quiz",
        help="generate TLB exercises from a seed: hits, misses, LRU, ASIDs, sfence.vma",
        description="Print TLB exercises: a small fully associative LRU TLB, two address spaces and "
        "a global page, and a sequence of accesses, ASID switches, sfence.vma and page-table "
        "changes without a fence.  The answer (--solve) marks each access hit or miss, "
        "names what each miss evicts and each fence removes, and shows the TLB after "
        "every step, replayed on hwsim's TLB model.",
    )
    g = tlb_quiz.add_argument_group(
        "TLB geometry and difficulty (without them: the default fully associative LRU TLB of 4 entries)"
    )
    g.add_argument("--sets", type=int_arg, help="number of sets, a power of two (default 1: fully associative)")
    g.add_argument("--ways", type=int_arg, help="entries per set (default: 4 / sets, at least 1)")
    g.add_argument("--policy", choices=["lru", "fifo", "random"], help="replacement within a set (default lru)")
    g.add_argument("--split", action="store_true", help="split TLBs: fetches use an ITLB, loads and stores a DTLB")
    g.add_argument(
        "--difficulty",
        choices=["easy", "medium", "hard"],
        help="easy (short, one address space), medium (the default's sequences) or hard (long, superpages)",
    )
    g.add_argument(
        "--harts",
        type=int_arg,
        help="shootdown exercises instead: N harts (2 to 4), each with its own TLB, a PTE changed on one of "
        "them; which hart holds a stale entry, which fences and IPIs are needed, what each access returns",
    )


@dataclass
class Source:
    """Page tables to inspect: memory readable by the walker, satp, and what they are, in words."""

    mem: PteMemory
    satp: int
    description: list[str]
    summary: str = ""  # one line, for a snapshot's "source"
    regions: list = field(default_factory=list)  # hwsim.mmu.snapshot.Region: the memory map, as far as known
    writable: bool = False
    complete_map: bool = True  # False for an image: memory outside it may still exist

    def region_of(self):
        """``pa -> region name`` when the whole memory map is known, else None."""
        from ..mmu.snapshot import region_namer

        return region_namer(self.regions) if self.complete_map else None

    @property
    def root(self) -> int:
        return satp_fields(self.satp)[2] << PAGE_SHIFT

    @property
    def mode(self) -> PagingMode | None:
        return PAGING_MODES.get(satp_fields(self.satp)[0])


def open_source(args: argparse.Namespace, stack: ExitStack, *, writable: bool = False) -> Source:
    """The page tables ``args`` name (exactly one of --image, --snapshot, --board), checked."""
    from ..mmu.snapshot import Region, load_snapshot, regions_of

    chosen = [name for name in ("image", "snapshot", "board") if getattr(args, name) is not None]
    if len(chosen) != 1:
        raise ConfigError(
            "give the page tables with exactly one of --image (with --base and --satp), "
            "--snapshot FILE, or --board BOARD with --demo or --driver DRIVER"
            + (f"; got {', '.join('--' + c for c in chosen)}" if chosen else "")
        )
    kind = chosen[0]
    if kind != "image":
        for opt in ("base", "satp"):
            if getattr(args, opt) is not None:
                raise ConfigError(f"--{opt} goes with --image (a {kind} carries its own memory map and satp)")
        if writable:
            raise ConfigError("--update-ad writes into a memory image; it needs --image")
    for opt in ("demo", "driver"):
        if getattr(args, opt) and kind != "board":
            raise ConfigError(f"--{opt} goes with --board")
    if kind == "image":
        missing = [f"--{opt}" for opt in ("base", "satp") if getattr(args, opt) is None]
        if missing:
            raise ConfigError(f"--image needs {' and '.join(missing)}")
        mem = stack.enter_context(ImageMemory(args.image, args.base, writable=writable))
        return Source(
            mem,
            args.satp,
            [],
            f"memory image {args.image}",
            [Region("image", "ram", args.base, mem.size)],
            writable,
            complete_map=False,
        )
    if kind == "snapshot":
        snap = load_snapshot(args.snapshot)
        desc = [f"snapshot {snap.path}" + (f" ({snap.source})" if snap.source else "")]
        return Source(snap.memory, snap.satp, desc, snap.source, snap.regions)
    if args.demo == bool(args.driver):
        raise ConfigError("--board needs one guest to run first: --demo or --driver DRIVER")
    from ..board import load_board
    from ..teach.live import run_demo_guest, run_driver

    board = load_board(args.board)
    live = run_demo_guest(board) if args.demo else run_driver(board, args.driver)
    phys = live.system.machine.phys
    return Source(phys, live.satp, live.lines, live.summary, regions_of(phys))


def _check_mode(satp: int, modes: dict[int, PagingMode] = PAGING_MODES) -> PagingMode | None:
    mode_bits = satp_fields(satp)[0]
    mode = modes.get(mode_bits)
    if mode is None and mode_bits != SATP_MODE_BARE:
        known = ", ".join(f"{m} ({pm.name})" for m, pm in modes.items())
        raise ConfigError(f"satp MODE={mode_bits} is not supported; known modes: 0 (Bare), {known}")
    return mode


def run_walk(args: argparse.Namespace) -> int:
    if args.format != "sv39":
        given = [
            flag
            for flag, on in (
                ("--hgatp", args.hgatp is not None),
                ("--vs-mxr", args.vs_mxr),
                ("--svnapot", args.svnapot),
                ("--svpbmt", args.svpbmt),
            )
            if on
        ]
        if given:
            verb = "go" if len(given) > 1 else "goes"
            raise ConfigError(f"{', '.join(given)} {verb} with RISC-V page tables, not --format {args.format}")
    if args.hgatp is not None:
        return run_walk_two_stage(args)
    if args.vs_mxr:
        raise ConfigError("--vs-mxr goes with --hgatp (two-stage translation)")
    if args.format != "sv39":
        return run_arch_walk(args)
    check_sv39_args(args)
    access = Access.parse(args.access)
    priv = Priv.parse(args.priv)
    if not 0 <= args.va < 1 << 64:
        raise ConfigError(f"--va {args.va:#x} is not a 64-bit address")
    if args.ad == "fault":
        policy = AdPolicy.FAULT
    else:
        policy = AdPolicy.UPDATE if args.update_ad else AdPolicy.REPORT
    with ExitStack() as stack:
        src = open_source(args, stack, writable=args.update_ad)
        mode = _check_mode(src.satp, TEACHING_MODES)  # Sv57 too: walks need no machine
        _, asid, root_ppn = satp_fields(src.satp)
        if mode is None:
            out: dict = {"result": "ok", "mode": "Bare", "va": hex(args.va), "pa": hex(args.va), "steps": []}
            print(json.dumps(out) if args.json else f"satp MODE=Bare: no translation, pa {args.va:#x}")
            return 0
        result = walk(
            src.mem,
            root_ppn << PAGE_SHIFT,
            args.va,
            access,
            priv,
            mode=mode,
            sum=args.sum,
            mxr=args.mxr,
            ad=policy,
            svnapot=args.svnapot,
            svpbmt=args.svpbmt,
        )
    region_of = src.region_of()
    tr = result.translation
    region = region_of(tr.pa) if tr is not None and region_of is not None else None
    if args.json:
        out = walk_to_json(result)
        out["satp"] = {"mode": mode.name, "asid": asid, "root": hex(root_ppn << PAGE_SHIFT)}
        if src.description:
            out["source"] = src.description
        if result.ok and region_of is not None:
            out["region"] = region
        print(json.dumps(out))
        return 0 if result.ok else 1
    for line in src.description:
        print(line)
    if args.explain:
        lines = format_walk_explained(result, satp=src.satp)
    else:
        print(f"satp {src.satp:#018x}: MODE={mode.name} ASID={asid} root table at {root_ppn << PAGE_SHIFT:#x}")
        lines = format_walk(result)
        lines.insert(2, FLAGS_LEGEND)  # after the VA's fields and the access, before the PTEs
    print("\n".join(lines))
    if tr is not None and region_of is not None:
        pa = tr.pa
        print(
            f"pa {pa:#x} is in {region!r}"
            if region
            else f"pa {pa:#x} is neither RAM nor a device: the access itself would be an access fault"
        )
    return 0 if result.ok else 1


def run_dump(args: argparse.Namespace) -> int:
    if args.format != "sv39":
        for opt in ("json", "html", "save_snapshot"):
            if getattr(args, opt):
                raise ConfigError(f"--{opt.replace('_', '-')} goes with --format sv39; {args.format} dumps as text")
        return run_arch_dump(args)
    check_sv39_args(args)
    from ..mmu.snapshot import save_snapshot
    from ..mmu.tree import format_tree, read_tree, tree_to_json

    with ExitStack() as stack:
        src = open_source(args, stack)
        mode = _check_mode(src.satp)
        if mode is None:
            raise ConfigError(f"satp {src.satp:#x} is Bare: there are no page tables to dump")
        tree = read_tree(src.mem, src.root, mode, satp=src.satp)
        namer = src.region_of()
        if args.save_snapshot:
            n = save_snapshot(args.save_snapshot, src.mem, src.satp, src.regions, source=src.summary)
            print(f"saved {plural(n, 'table')} to {args.save_snapshot}", file=sys.stderr)
        if args.html:  # while the memory is open: the page holds every table's PTEs, V=0 ones too
            from ..teach.html import tree_html, write_html

            page = tree_html(
                tree,
                title=src.summary or f"page tables of satp {src.satp:#x}",
                region_of=namer,
                memory=src.mem,
                regions=src.regions if src.complete_map else None,
                ram=[(r.base, r.size) for r in src.regions if r.kind == "ram"],
            )
    if args.html:
        write_html(args.html, page)
        print(f"wrote {args.html}", file=sys.stderr)
    if args.json:
        out = tree_to_json(tree, region_of=namer)
        if src.description:
            out["source"] = src.description
        print(json.dumps(out))
        return 0
    for line in src.description:
        print(line)
    print("\n".join(format_tree(tree, region_of=namer)))
    return 0


def run_walk_two_stage(args: argparse.Namespace) -> int:
    """``walk --hgatp``: the VS-stage (--satp as vsatp) nested over the G-stage, every PTE read counted."""
    from ..mmu.bits import HGATP_MODES, hgatp_fields
    from ..mmu.report_twostage import format_two_stage, format_two_stage_explained, two_stage_to_json
    from ..mmu.twostage import walk_two_stage

    if args.image is None or args.snapshot is not None or args.board is not None:
        raise ConfigError("--hgatp goes with --image (a memory image holding both stages' tables)")
    access = Access.parse(args.access)
    priv = Priv.parse(args.priv)
    if not 0 <= args.va < 1 << 64:
        raise ConfigError(f"--va {args.va:#x} is not a 64-bit address")
    g_bits, _, g_ppn = hgatp_fields(args.hgatp)
    g_mode = HGATP_MODES.get(g_bits)
    if g_mode is None and g_bits != SATP_MODE_BARE:
        known = ", ".join(f"{m} ({pm.name})" for m, pm in HGATP_MODES.items())
        raise ConfigError(f"hgatp MODE={g_bits} is not supported; known modes: 0 (Bare), {known}")
    if args.ad == "fault":
        policy = AdPolicy.FAULT
    else:
        policy = AdPolicy.UPDATE if args.update_ad else AdPolicy.REPORT
    with ExitStack() as stack:
        src = open_source(args, stack, writable=args.update_ad)
        vs_mode = _check_mode(src.satp)
        result = walk_two_stage(
            src.mem,
            args.va,
            access,
            priv,
            vs_mode=vs_mode,
            vs_root=src.root,
            g_mode=g_mode,
            g_root=g_ppn << PAGE_SHIFT,
            sum=args.sum,
            mxr=args.mxr,
            vs_mxr=args.vs_mxr,
            ad=policy,
        )
    if args.json:
        out = two_stage_to_json(result)
        out["vsatp"], out["hgatp"] = hex(src.satp), hex(args.hgatp)
        print(json.dumps(out))
        return 0 if result.ok else 1
    for line in src.description:
        print(line)
    if args.explain:
        lines = format_two_stage_explained(result, vsatp=src.satp, hgatp=args.hgatp)
    else:
        lines = format_two_stage(result)
        lines.insert(2, FLAGS_LEGEND)
    print("\n".join(lines))
    return 0 if result.ok else 1
