"""``hwsim mmu walk/dump --format x86-64|x86-64-5level|aarch64-4k|aarch64-16k|aarch64-64k``.

The tables come from a raw image (``--image FILE --base ADDR``) or a JSON file of words
(``--tables FILE``, the shape of a quiz exercise's ``--json``); the registers from options:
x86-64 ``--cr3`` and its controls, AArch64 ``--ttbr0``/``--ttbr1`` and TCR_EL1's fields.
``--priv U`` is CPL=3 or EL0, ``--priv S`` CPL=0 or EL1.
"""

from __future__ import annotations

import argparse
import json
from contextlib import ExitStack

from ..errors import ConfigError
from ..mmu.formats import FORMATS, FormatWalk, format_brief, format_explained, load_tables, walk_to_json
from ..riscv.priv import Access, Priv

X86_FORMATS = ("x86-64", "x86-64-5level")
ARM_FORMATS = ("aarch64-4k", "aarch64-16k", "aarch64-64k")

# option -> the formats it belongs to (None: not given)
_X86_OPTIONS = ("cr3", "no_nxe", "no_wp", "smep", "smap", "ac", "pkru", "maxphyaddr")
_ARM_OPTIONS = ("ttbr0", "ttbr1", "t0sz", "t1sz", "pa_bits", "ha", "wxn", "pan")
_SV39_OPTIONS = ("satp", "snapshot", "board", "sum", "mxr", "update_ad")


def add_format_options(p: argparse.ArgumentParser, int_arg, *, walk: bool) -> None:
    p.add_argument(
        "--format",
        choices=FORMATS,
        default="sv39",
        help="the page-table format (default sv39; the others read --image or --tables with the registers below)",
    )
    p.add_argument(
        "--tables",
        metavar="FILE",
        help="with an x86-64 or AArch64 --format: page tables as JSON, "
        '{"ram": {"base": ..., "size": ...}, "memory": {"0xADDR": "0xVALUE", ...}} (a quiz exercise\'s --json)',
    )
    x = p.add_argument_group("x86-64 (--format x86-64 or x86-64-5level)")
    x.add_argument("--cr3", type=int_arg, help="CR3: the root table's address (bits 51:12), PCD, PWT")
    x.add_argument("--maxphyaddr", type=int_arg, help="MAXPHYADDR, 36 to 52 (default 52)")
    if walk:
        x.add_argument("--no-nxe", action="store_true", default=None, help="IA32_EFER.NXE=0 (bit 63 is reserved)")
        x.add_argument("--no-wp", action="store_true", default=None, help="CR0.WP=0 (supervisor writes ignore R/W)")
        x.add_argument("--smep", action="store_true", default=None, help="CR4.SMEP=1")
        x.add_argument("--smap", action="store_true", default=None, help="CR4.SMAP=1")
        x.add_argument("--ac", action="store_true", default=None, help="EFLAGS.AC=1 (with SMAP)")
        x.add_argument("--pkru", type=int_arg, help="CR4.PKE=1 with this PKRU (AD at bit 2i, WD at 2i+1)")
    a = p.add_argument_group("AArch64 (--format aarch64-4k, aarch64-16k or aarch64-64k)")
    a.add_argument("--ttbr0", type=int_arg, help="TTBR0_EL1: the table for VAs with bit 63 = 0")
    a.add_argument("--ttbr1", type=int_arg, help="TTBR1_EL1: the table for VAs with bit 63 = 1")
    a.add_argument("--t0sz", type=int_arg, help="TCR_EL1.T0SZ, 16 to 39 (default 16: 48-bit VAs)")
    a.add_argument("--t1sz", type=int_arg, help="TCR_EL1.T1SZ, 16 to 39 (default 16)")
    a.add_argument("--pa-bits", type=int_arg, help="the PA size TCR_EL1.IPS gives: 32, 36, 40, 42, 44, 48 (default)")
    if walk:
        a.add_argument("--ha", action="store_true", default=None, help="TCR_EL1.HA=1: the hardware sets AF")
        a.add_argument("--wxn", action="store_true", default=None, help="SCTLR_EL1.WXN=1")
        a.add_argument("--pan", action="store_true", default=None, help="PSTATE.PAN=1")


def _given(args: argparse.Namespace, names) -> list[str]:
    return ["--" + n.replace("_", "-") for n in names if getattr(args, n, None) not in (None, False)]


def _go(options: list[str]) -> str:
    """``--cr3 goes``, ``--cr3, --smep go``."""
    return ", ".join(options) + (" goes" if len(options) == 1 else " go")


def check_sv39_args(args: argparse.Namespace) -> None:
    """With ``--format sv39``: no option of another format."""
    foreign = _given(args, _X86_OPTIONS + _ARM_OPTIONS + ("tables",))
    if foreign:
        raise ConfigError(f"{_go(foreign)} with an x86-64 or AArch64 --format, not sv39")


def _memory(args: argparse.Namespace, stack: ExitStack):
    wrong = _given(args, _SV39_OPTIONS)
    if wrong:
        raise ConfigError(f"{_go(wrong)} with --format sv39 (RISC-V), not {args.format}")
    if getattr(args, "ad", "update") != "update":
        raise ConfigError(f"--ad goes with --format sv39 (RISC-V), not {args.format}")
    if (args.image is None) == (args.tables is None):
        raise ConfigError(f"--format {args.format} reads its tables from --image FILE --base ADDR or --tables FILE")
    if args.tables is not None:
        if args.base is not None:
            raise ConfigError("--base goes with --image (a --tables file gives its own addresses)")
        return load_tables(args.tables)
    if args.base is None:
        raise ConfigError("--image needs --base")
    from ..mmu.image import ImageMemory

    return stack.enter_context(ImageMemory(args.image, args.base))


def _x86_control(args: argparse.Namespace):
    from ..mmu.x86_walk import X86Control

    wrong = _given(args, _ARM_OPTIONS)
    if wrong:
        raise ConfigError(f"{_go(wrong)} with an AArch64 --format, not {args.format}")
    if args.cr3 is None:
        raise ConfigError(f"--format {args.format} needs --cr3 (the root table's address)")
    maxphy = 52 if args.maxphyaddr is None else args.maxphyaddr
    if not 36 <= maxphy <= 52:
        raise ConfigError(f"--maxphyaddr {maxphy} is out of range: 36 to 52")
    if not 0 <= args.cr3 < 1 << maxphy:
        raise ConfigError(f"--cr3 {args.cr3:#x} sets bits at or above MAXPHYADDR ({maxphy})")
    pkru = getattr(args, "pkru", None)
    if pkru is not None and not 0 <= pkru < 1 << 32:
        raise ConfigError(f"--pkru {pkru:#x} is not a 32-bit value")
    ctl = X86Control(
        nxe=not getattr(args, "no_nxe", None),
        wp=not getattr(args, "no_wp", None),
        smep=bool(getattr(args, "smep", None)),
        smap=bool(getattr(args, "smap", None)),
        ac=bool(getattr(args, "ac", None)),
        pke=pkru is not None,
        pkru=pkru or 0,
        maxphyaddr=maxphy,
    )
    return ctl


def _arm_control(args: argparse.Namespace):
    from ..mmu.arm_walk import ArmControl

    wrong = _given(args, _X86_OPTIONS)
    if wrong:
        raise ConfigError(f"{_go(wrong)} with an x86-64 --format, not {args.format}")
    if args.ttbr0 is None and args.ttbr1 is None:
        raise ConfigError(f"--format {args.format} needs --ttbr0 or --ttbr1 (or both)")
    for name in ("ttbr0", "ttbr1"):
        value = getattr(args, name)
        if value is not None and not 0 <= value < 1 << 64:
            raise ConfigError(f"--{name} {value:#x} is not a 64-bit value")
    ctl = ArmControl(
        ttbr0=args.ttbr0 or 0,
        ttbr1=args.ttbr1 or 0,
        t0sz=16 if args.t0sz is None else args.t0sz,
        t1sz=16 if args.t1sz is None else args.t1sz,
        pa_bits=48 if args.pa_bits is None else args.pa_bits,
        ha=bool(getattr(args, "ha", None)),
        wxn=bool(getattr(args, "wxn", None)),
        pan=bool(getattr(args, "pan", None)),
    )
    ctl.check()
    return ctl


def arch_walk(args: argparse.Namespace, mem, access: Access, priv: Priv) -> FormatWalk:
    """Walk with the registers the options give (each format's options checked)."""
    if args.format in X86_FORMATS:
        from ..mmu.x86_bits import X86_64, X86_64_5LEVEL
        from ..mmu.x86_walk import walk_x86

        ctl = _x86_control(args)
        fmt = X86_64 if args.format == "x86-64" else X86_64_5LEVEL
        return walk_x86(mem, args.cr3, args.va, access, priv, fmt=fmt, ctl=ctl)
    from ..mmu.arm_bits import GRANULES
    from ..mmu.arm_walk import walk_arm

    ctl = _arm_control(args)
    upper = args.va >> 63
    if (args.ttbr1 if upper else args.ttbr0) is None:
        raise ConfigError(f"va {args.va:#x} has bit 63 = {upper}: it is translated with --ttbr{upper}, not given")
    return walk_arm(mem, args.va, access, priv, granule=GRANULES[args.format], ctl=ctl)


def run_arch_dump(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        mem = _memory(args, stack)
        if args.format in X86_FORMATS:
            from ..mmu.x86_walk import dump_x86

            ctl = _x86_control(args)
            from ..mmu.x86_bits import X86_64, X86_64_5LEVEL

            fmt = X86_64 if args.format == "x86-64" else X86_64_5LEVEL
            lines = dump_x86(mem, args.cr3, fmt=fmt, ctl=ctl)
        else:
            from ..mmu.arm_bits import GRANULES
            from ..mmu.arm_walk import dump_arm

            ctl = _arm_control(args)
            halves = tuple(h for h, v in ((0, args.ttbr0), (1, args.ttbr1)) if v is not None)
            lines = dump_arm(mem, granule=GRANULES[args.format], ctl=ctl, ttbrs=halves)
    print("\n".join(lines))
    return 0


def run_arch_walk(args: argparse.Namespace) -> int:
    access = Access.parse(args.access)
    priv = Priv.parse(args.priv)
    if not 0 <= args.va < 1 << 64:
        raise ConfigError(f"--va {args.va:#x} is not a 64-bit address")
    with ExitStack() as stack:
        mem = _memory(args, stack)
        result = arch_walk(args, mem, access, priv)
    if args.json:
        print(json.dumps(walk_to_json(result)))
    else:
        print("\n".join(format_explained(result) if args.explain else format_brief(result)))
    return 0 if result.ok else 1
