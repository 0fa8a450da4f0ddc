"""``hwsim mmu ...``: page-table inspection commands."""

from __future__ import annotations

import argparse
import json

from ..errors import ConfigError
from ..mmu.bits import PAGING_MODES, SATP_MODE_BARE, satp_fields
from ..mmu.image import ImageMemory
from ..mmu.report import format_walk, walk_to_json
from ..mmu.walker import AdPolicy, walk
from ..riscv.priv import Access, Priv


def register(sub: argparse._SubParsersAction) -> None:
    from . import int_arg

    mmu = sub.add_parser("mmu", help="inspect page tables and translations")
    mmu_sub = mmu.add_subparsers(dest="mmu_command", metavar="SUBCOMMAND", required=True)
    w = mmu_sub.add_parser(
        "walk", help="translate one virtual address against a raw memory image, level by level",
        description="Walk the page tables in a raw physical-memory image and print each level and the result.")
    w.add_argument("--image", required=True, help="raw memory image; its first byte is at physical address --base")
    w.add_argument("--base", required=True, type=int_arg, help="physical address of the image's first byte")
    w.add_argument("--satp", required=True, type=int_arg, help="satp value (MODE, ASID, root PPN)")
    w.add_argument("--va", required=True, type=int_arg, help="virtual address to translate")
    w.add_argument("--access", required=True, choices=[a.value for a in Access])
    w.add_argument("--priv", required=True, choices=["U", "S", "u", "s"], help="privilege of the access")
    w.add_argument("--sum", action="store_true", help="mstatus.SUM=1 (S-mode may load/store user pages)")
    w.add_argument("--mxr", action="store_true", help="mstatus.MXR=1 (loads from executable pages allowed)")
    w.add_argument("--ad", choices=["update", "fault"], default="update",
                   help="A/D bits clear: 'update' as hardware does (default), or 'fault' (Svade)")
    w.add_argument("--update-ad", action="store_true",
                   help="write the A/D update into the image (without it the image is never written)")
    w.add_argument("--json", action="store_true", help="print one JSON object")
    w.set_defaults(func=run_walk)


def run_walk(args: argparse.Namespace) -> int:
    mode_bits, asid, root_ppn = satp_fields(args.satp)
    access = Access.parse(args.access)
    priv = Priv.parse(args.priv)
    if not 0 <= args.va < 1 << 64:
        raise ConfigError(f"--va {args.va:#x} is not a 64-bit address")
    mode = PAGING_MODES.get(mode_bits)
    if mode is None and mode_bits != SATP_MODE_BARE:
        known = ", ".join(f"{m} ({pm.name})" for m, pm in PAGING_MODES.items())
        raise ConfigError(f"satp MODE={mode_bits} is not supported; known modes: 0 (Bare), {known}")
    if args.ad == "fault":
        policy = AdPolicy.FAULT
    else:
        policy = AdPolicy.UPDATE if args.update_ad else AdPolicy.REPORT
    with ImageMemory(args.image, args.base, writable=args.update_ad) as mem:
        if mode is None:
            out = {"result": "ok", "mode": "Bare", "va": hex(args.va), "pa": hex(args.va), "steps": []}
            print(json.dumps(out) if args.json else f"satp MODE=Bare: no translation, pa {args.va:#x}")
            return 0
        result = walk(mem, root_ppn << 12, args.va, access, priv, mode=mode, sum=args.sum, mxr=args.mxr, ad=policy)
    if args.json:
        out = walk_to_json(result)
        out["satp"] = {"mode": mode.name, "asid": asid, "root": hex(root_ppn << 12)}
        print(json.dumps(out))
    else:
        print(f"satp {args.satp:#018x}: MODE={mode.name} ASID={asid} root table at {root_ppn << 12:#x}")
        print("\n".join(format_walk(result)))
    return 0 if result.ok else 1
