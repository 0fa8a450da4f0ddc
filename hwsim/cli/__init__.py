"""The ``hwsim`` command line: one module per subcommand, each with ``register(subparsers)``.

Errors that hwsim raises on purpose (:class:`~hwsim.errors.HwsimError`) are
printed as ``hwsim: error: ...`` with exit status 2; nothing prints a traceback
for bad input.  Ctrl-C exits 130 without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .._version import __version__
from ..errors import HwsimError

# Subcommand modules, in the order ``hwsim --help`` lists them.
COMMANDS = (
    "hwsim.cli.demo",
    "hwsim.cli.driver",
    "hwsim.cli.disasm",
    "hwsim.cli.fuzz",
    "hwsim.cli.mmu",
    "hwsim.cli.iommu",
    "hwsim.cli.course",
    "hwsim.cli.teach",
    "hwsim.cli.spectest",
    "hwsim.cli.wasm",
)


def int_arg(text: str) -> int:
    """An integer in any Python literal base (``0x80000000``, ``4096``, ``0b101``), underscores allowed."""
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hwsim", description="A hardware-simulated runtime: an emulated RISC-V 64 CPU with Sv39 page tables."
    )
    parser.add_argument("--version", action="version", version=f"hwsim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args) or 0
    except HwsimError as exc:
        print(f"hwsim: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:  # Ctrl-C outside a run (a run catches its own and prints its report)
        print("hwsim: interrupted", file=sys.stderr)
        return 130
