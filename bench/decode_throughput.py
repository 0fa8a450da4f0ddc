"""Decode + validate throughput of the wasm front end on a large generated module, and the spec-test scope time.

    python bench/decode_throughput.py [--functions 4000] [--wasm FILE] [--repeat 3] [--scope]

Builds a C program of --functions generated functions (integer hashing, float
loops, 64-bit arithmetic, memory copies, switch statements) with
``python -m ziglang cc -target wasm32-wasi -mexec-model=reactor -O2 -g0``
(cached in the temp directory, as the build takes a while), then times
hwsim's decoder and validator on it, best of --repeat, next to
``wasmtime.Module.validate`` (in process, native) and ``wasm-tools validate``
(a subprocess, its start-up measured on an empty module and subtracted) in
the same run.  MB are 10**6 bytes, of the whole file and of its code section.
With --scope, also times ``hwsim spectest`` over the suite's scope.txt with
the validate-only engine, cold (empty conversion cache) and warm.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hwsim.wasm import decode_module, validate


def generate_c(n: int, seed: int = 1) -> str:
    rng = random.Random(seed)
    out = [
        "#include <stdint.h>",
        "#include <string.h>",
        "#include <math.h>",
        "static uint32_t table[256]; static double dtab[64]; static uint8_t buf[4096];",
    ]
    for i in range(n):
        r = [rng.randrange(1, 31) for _ in range(4)]
        kind = i % 5
        if kind == 0:
            out.append(f"""__attribute__((noinline)) uint32_t f{i}(uint32_t a, uint32_t b) {{
  uint32_t h = {rng.randrange(1 << 32)}u;
  for (uint32_t k = 0; k < (a & 63); k++) {{
    h ^= table[(h + k) & 255] + b; h = (h << {r[0]}) | (h >> {32 - r[0]}); buf[(h + k) & 4095] += (uint8_t)h;
  }}
  switch (b % 7) {{ case 0: h += a * {rng.randrange(3, 999)}u; break; case 1: h -= b; break;
    case 2: h ^= a >> {r[1]}; break; case 3: h = h / (b | 1); break; case 4: h %= (a | 1); break; default: h = ~h; }}
  return h;
}}""")
        elif kind == 1:
            out.append(f"""__attribute__((noinline)) double g{i}(double x, int n) {{
  double acc = {rng.random():.6f};
  for (int k = 0; k < n; k++) {{
    acc = acc * {rng.random():.5f} + dtab[k & 63] - x / (k + 1.5); if (acc > 1e9) acc = sqrt(acc);
  }}
  return acc < 0 ? -acc : acc;
}}""")
        elif kind == 2:
            out.append(f"""__attribute__((noinline)) int64_t h{i}(int64_t a, int64_t b) {{
  int64_t r = a;
  while (b > 0) {{ if (b & 1) r = r * {rng.randrange(3, 9999)} + a; else r ^= (r >> {r[2]}); b >>= 1;
    a += (int64_t)table[b & 255]; }}
  return r + (int64_t)buf[a & 4095];
}}""")
        elif kind == 3:
            out.append(f"""__attribute__((noinline)) void m{i}(uint8_t *dst, const uint8_t *src, uint32_t n) {{
  for (uint32_t k = 0; k < n; k++) dst[k] = (uint8_t)(src[k] * {rng.randrange(1, 255)} + (k ^ {r[3]}));
  if (n > 16) memcpy(dst + 8, src, n - 8);
}}""")
        else:
            out.append(f"""__attribute__((noinline)) float s{i}(const float *v, int n) {{
  float best = v[0];
  for (int k = 1; k < n; k++) {{
    float t = v[k] * {rng.random():.4f}f - best; if (t > best) best = t; else if (t < -best) best = -t;
  }}
  return best;
}}""")
    calls = {
        0: "acc += f{i}(acc, {i});",
        1: "d += g{i}(d, {m17});",
        2: "acc += (uint32_t)h{i}(acc, {i});",
        3: "m{i}(buf + {m2048}, buf, {m300});",
        4: "d += s{i}((const float *)dtab, {m31});",
    }
    body = "\n  ".join(
        calls[i % 5].format(i=i, m17=i % 17, m2048=i % 2048, m300=i % 300, m31=i % 31 + 1) for i in range(n)
    )
    out.append(
        '__attribute__((export_name("run"))) uint32_t run(uint32_t seed) {\n'
        f"  uint32_t acc = seed; double d = 0;\n  {body}\n  return acc + (uint32_t)d;\n}}"
    )
    return "\n".join(out) + "\n"


def build(n: int) -> Path:
    source = generate_c(n)
    key = hashlib.sha256(source.encode()).hexdigest()[:16]
    cache = Path(tempfile.gettempdir()) / "hwsim-bench"
    cache.mkdir(exist_ok=True)
    wasm = cache / f"generated-{n}-{key}.wasm"
    if not wasm.exists():
        c_file = cache / f"generated-{n}-{key}.c"
        c_file.write_text(source)
        print(f"building {wasm.name} from {n} generated C functions (cached for later runs) ...", flush=True)
        tmp = wasm.with_suffix(".tmp")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "ziglang",
                "cc",
                "-target",
                "wasm32-wasi",
                "-mexec-model=reactor",
                "-O2",
                "-g0",
                str(c_file),
                "-o",
                str(tmp),
            ],
            check=True,
        )
        os.replace(tmp, wasm)
    return wasm


def code_section_size(module) -> int:
    return sum(len(f.body) for f in module.funcs)


def best_of(repeat: int, fn) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def code_bytes(data: bytes) -> int:
    """Size of the code section's contents."""
    from hwsim.wasm.reader import read_u32

    pos = 8
    while pos < len(data):
        sid = data[pos]
        size, start = read_u32(data, pos + 1)
        if sid == 10:
            return size
        pos = start + size
    return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--functions", type=int, default=4000)
    ap.add_argument("--wasm", help="benchmark this module instead of the generated one")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--scope", action="store_true", help="also time the spec-test scope run")
    args = ap.parse_args()
    path = Path(args.wasm) if args.wasm else build(args.functions)
    data = path.read_bytes()
    mb, code_mb = len(data) / 1e6, code_bytes(data) / 1e6
    t_decode, module = best_of(args.repeat, lambda: decode_module(data))
    t_validate, _ = best_of(args.repeat, lambda: validate(module))
    n_instr = sum(len(f.body) for f in module.funcs)
    total = t_decode + t_validate
    print(
        f"module: {path.name}: {mb:.2f} MB, code section {code_mb:.2f} MB, {len(module.funcs)} functions, "
        f"{n_instr} instructions"
    )
    print(
        f"hwsim decode:            {t_decode:7.3f} s  {mb / t_decode:6.2f} MB/s  "
        f"({code_mb / t_decode:.2f} MB/s of code)"
    )
    print(
        f"hwsim validate:          {t_validate:7.3f} s  {mb / t_validate:6.2f} MB/s  "
        f"({code_mb / t_validate:.2f} MB/s of code)"
    )
    print(
        f"hwsim decode + validate: {total:7.3f} s  {mb / total:6.2f} MB/s  ({code_mb / total:.2f} MB/s of code, "
        f"{n_instr / total / 1e6:.2f} M instructions/s)"
    )
    # A Module from the code cache: found by the hash of the bytes, bodies neither decoded nor validated.
    # Issue 15's target: at least 20 MB/s.
    from hwsim.runtime.api import Engine, Module

    with tempfile.TemporaryDirectory() as cache_dir:
        cache_engine = Engine(cache_dir=cache_dir)
        t_cold, _ = best_of(1, lambda: Module(cache_engine, data))
        t_cached, _ = best_of(args.repeat, lambda: Module(cache_engine, data))
    print(f"hwsim Module, compiled:  {t_cold:7.3f} s  {mb / t_cold:6.2f} MB/s  (decode, validate, compile, cache)")
    print(
        f"hwsim Module, cached:    {t_cached:7.3f} s  {mb / t_cached:6.2f} MB/s  (target >= 20 MB/s: "
        f"{'met' if mb / t_cached >= 20 else 'NOT met'})"
    )
    try:
        import wasmtime
    except ImportError:
        print("wasmtime.Module.validate: not installed")
    else:
        engine = wasmtime.Engine()
        t_wt, _ = best_of(args.repeat, lambda: wasmtime.Module.validate(engine, data))
        print(
            f"wasmtime.Module.validate: {t_wt:6.3f} s  {mb / t_wt:6.2f} MB/s   hwsim takes {total / t_wt:.0f}x as long"
        )
    try:
        from hwsim.spectest import find_wasm_tools

        tool = find_wasm_tools()
    except Exception as exc:  # noqa: BLE001 - optional comparison
        print(f"wasm-tools validate: unavailable ({exc})")
    else:
        empty = Path(tempfile.gettempdir()) / "hwsim-bench" / "empty.wasm"
        empty.write_bytes(b"\0asm\1\0\0\0")
        t_start, _ = best_of(args.repeat, lambda: subprocess.run([tool, "validate", str(empty)], check=True))
        t_tool, _ = best_of(args.repeat, lambda: subprocess.run([tool, "validate", str(path)], check=True))
        net = max(t_tool - t_start, 1e-6)
        print(
            f"wasm-tools validate:     {net:7.3f} s  {mb / net:6.2f} MB/s   (process start-up {t_start:.3f} s "
            f"subtracted; hwsim takes {total / net:.0f}x as long)"
        )
    if args.scope:
        scope_time()


def scope_time() -> None:
    suite = Path(
        os.environ.get("HWSIM_WASM_TESTSUITE", Path(__file__).resolve().parents[2] / "shared" / "wasm-testsuite")
    )
    files = [suite / line.strip() for line in (suite / "scope.txt").read_text().splitlines() if line.strip()]
    with tempfile.TemporaryDirectory() as cache:
        for label in ("cold (converting with wasm-tools)", "warm (conversions cached)"):
            t0 = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-m", "hwsim", "spectest", "--cache-dir", cache, *map(str, files)],
                capture_output=True,
                text=True,
            )
            elapsed = time.perf_counter() - t0
            print(
                f"hwsim spectest on {len(files)} scope scripts, {label}: {elapsed:.1f} s -> "
                f"{out.stdout.strip().splitlines()[-1]}"
            )


if __name__ == "__main__":
    main()
