"""wasmtime-py's examples (examples/wasmtime_py/, docs/embedding.md) run on hwsim with one change, the
import: each is checked against the original's SHA-256, then run as wasmtime-py runs it."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "examples" / "wasmtime_py"
SUMS = dict(
    (path, digest) for digest, path in re.findall(r"^([0-9a-f]{64})  (\S+)$", (HERE / "README.md").read_text(), re.M)
)
OUTPUT = {  # what each prints, the same under wasmtime-py
    "hello": "Hello from Python!\n",
    "gcd": "gcd(6, 27) = 3\n",
    "memory": "Checking memory...\nMutating memory...\nGrowing memory...\nCreating stand-alone memory...\n",
    "multi": "Initializing...\nCompiling module...\nCreating callback...\nInstantiating module...\n"
    'Extracting export...\nCalling export "g"...\n> 4 2\nCalling export "round_trip_many"...\n'
    "Printing result...\n>\n" + "".join(f"  {i}\n" for i in range(10)),
}


def test_the_examples_are_wasmtime_pys_but_for_the_import():
    assert sorted(SUMS) == sorted(str(p.relative_to(HERE)) for p in (HERE / "examples").iterdir())
    for path, digest in SUMS.items():
        text = (HERE / path).read_bytes()
        if path.endswith(".py"):
            text, changed = re.subn(rb"^from hwsim import ", b"from wasmtime import ", text, flags=re.M)
            assert changed == 1 and b"hwsim" not in text, path
        assert hashlib.sha256(text).hexdigest() == digest, f"{path} differs from wasmtime-py's"
    assert "Apache License" in (HERE / "LICENSE").read_text()


@pytest.mark.parametrize("name", sorted(OUTPUT))
def test_example_runs_on_hwsim(name):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    out = subprocess.run(
        [sys.executable, f"examples/{name}.py"], cwd=HERE, env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == OUTPUT[name]
