"""``hwsim teach serve``: the interactive teaching pages on localhost."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from . import int_arg

    teach = sub.add_parser("teach", help="serve the interactive teaching pages on localhost")
    teach_sub = teach.add_subparsers(dest="teach_command", metavar="SUBCOMMAND", required=True)
    s = teach_sub.add_parser(
        "serve",
        help="serve a folder of pages (hwsim mmu dump --html, mmu quiz --html) on http://127.0.0.1",
        description="Serve a folder on the loopback interface only, until Ctrl-C.  The pages work as files "
        "too: each is self-contained and fetches nothing.",
    )
    s.add_argument("dir", nargs="?", default=".", help="the folder of pages (default: the current folder)")
    s.add_argument("--port", type=int_arg, default=8000, help="TCP port (default 8000; 0: any free port)")
    s.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    from ..teach.serve import HOST, make_server

    server = make_server(args.dir, args.port)
    port = server.server_address[1]
    print(f"serving {args.dir} on http://{HOST}:{port}/ until Ctrl-C", flush=True)
    for page in sorted(Path(args.dir).glob("*.html")):
        print(f"  http://{HOST}:{port}/{page.name}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
