"""``hwsim teach serve``: a folder of interactive pages on http://127.0.0.1 (the stdlib's http.server).

The pages need no server (each is one file that fetches nothing); this is for a lab where opening
files is awkward.  It listens on the loopback interface only, and serves the folder read-only and
nothing outside it: a path that resolves elsewhere (``..``, a symbolic link out of the folder) is 404.
"""

from __future__ import annotations

import functools
import os
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

from ..errors import ConfigError

HOST = "127.0.0.1"


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # a lab server: no line per request
        pass

    def send_head(self):  # (the base class leaves it untyped)
        root = os.path.realpath(self.directory)
        real = os.path.realpath(self.translate_path(self.path))
        if real != root and not real.startswith(root + os.sep):
            self.send_error(404, "File not found")
            return None
        return super().send_head()


def make_server(directory: str | os.PathLike, port: int = 8000) -> ThreadingHTTPServer:
    """A server of ``directory`` on 127.0.0.1:``port`` (0: any free port), not yet serving."""
    path = os.fspath(directory)
    if not os.path.isdir(path):
        raise ConfigError(f"{path!r} is not a folder (write pages with hwsim mmu dump --html or mmu quiz --html)")
    if not 0 <= port < 65536:
        raise ConfigError(f"--port must be from 0 to 65535, not {port}")
    try:
        return ThreadingHTTPServer((HOST, port), functools.partial(_Quiet, directory=path))
    except OSError as exc:
        raise ConfigError(f"cannot listen on {HOST}:{port}: {exc.strerror}") from None
