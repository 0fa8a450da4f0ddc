"""Put wasmtime-py's core-API tests (and its LICENSE) where tests/test_wasmtime_py_compat.py looks for them.

    python tests/wasmtime_py_compat/get_tests.py [SOURCE]

SOURCE is a git checkout of https://github.com/bytecodealliance/wasmtime-py (or that URL, the default,
cloned shallowly).  The files are taken at the pinned release below and written, unchanged, to
tests/data/wasmtime_py/, which is committed as test data: they are wasmtime-py's, Apache-2.0 WITH
LLVM-exception, so its LICENSE file is copied beside them, and README.md names the release, the commit
and each file's SHA-256 (tests/test_wasmtime_py_compat.py checks the files against it).  Run this to
move to a new release: change TAG and COMMIT, run it, then ``harness.py --update``.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

URL = "https://github.com/bytecodealliance/wasmtime-py"
TAG = "46.0.1"
COMMIT = "1988b8d1af0ca3f0805b98b94ab175c777b69699"
DEST = Path(__file__).resolve().parent.parent / "data" / "wasmtime_py"
FILES = ["LICENSE"] + [
    f"tests/test_{name}.py"
    for name in ("engine func global instance linker memory module refs store table trap types value".split())
]


def _show(repo: str, path: str) -> bytes:
    return subprocess.run(["git", "-C", repo, "show", f"{COMMIT}:{path}"], check=True, capture_output=True).stdout


def fetch(source: str = URL, dest: Path = DEST) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        repo = source
        if not Path(source, ".git").exists() and not Path(source, "HEAD").exists():
            repo = str(Path(tmp) / "wasmtime-py")
            subprocess.run(["git", "clone", "-q", "--depth", "1", "--branch", TAG, source, repo], check=True)
        dest.mkdir(parents=True, exist_ok=True)
        sums = []
        for path in FILES:
            data = _show(repo, path)
            (dest / Path(path).name).write_bytes(data)
            sums.append(f"{hashlib.sha256(data).hexdigest()}  {Path(path).name}")
        (dest / "README.md").write_text(README.format(url=URL, tag=TAG, commit=COMMIT, sums="\n".join(sums)))
    return dest


README = """# wasmtime-py's core-API tests (test data)

These files are wasmtime-py's own tests, unchanged, from {url}
release {tag}, commit {commit}.  They are wasmtime-py's, licensed under Apache-2.0 WITH
LLVM-exception (LICENSE, beside them); hwsim runs them as test data through an import shim
(tests/wasmtime_py_compat/harness.py, tests/test_wasmtime_py_compat.py).  Written by
tests/wasmtime_py_compat/get_tests.py; do not edit them here.

SHA-256 of each file:

```
{sums}
```
"""


if __name__ == "__main__":
    print(fetch(*sys.argv[1:2]))
