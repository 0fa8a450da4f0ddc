"""``hwsim mmu walk --hgatp``: two-stage walks of a memory image, in text, worked out, and in JSON."""

from __future__ import annotations

import json
import struct

import pytest

from hwsim.cli import main
from hwsim.teach.twostage_quiz import RAM_BASE, RAM_SIZE, make_exercise


def _image(tmp_path, ex) -> str:
    ram = bytearray(RAM_SIZE)
    for pa, value in ex.memory.items():
        struct.pack_into("<Q", ram, pa - RAM_BASE, value)
    path = tmp_path / "ram.bin"
    path.write_bytes(ram)
    return str(path)


def _args(image: str, ex, *extra: str) -> list[str]:
    return [
        "mmu",
        "walk",
        "--image",
        image,
        "--base",
        hex(RAM_BASE),
        "--satp",
        hex(ex.vsatp),
        "--hgatp",
        hex(ex.hgatp),
        "--va",
        hex(ex.va),
        "--access",
        ex.access.value,
        "--priv",
        ex.priv.name,
        *(["--sum"] if ex.sum else []),
        *extra,
    ]


@pytest.mark.parametrize("topic", ["translate", "g-fault-pte", "ad-write"])
def test_walk_hgatp_matches_the_quiz_answer(tmp_path, capsys, topic):
    ex = make_exercise(5, 1, [topic])
    want = ex.solve()
    image = _image(tmp_path, ex)
    assert main(_args(image, ex, "--json")) == (0 if want.ok else 1)
    out = json.loads(capsys.readouterr().out)
    assert out["pte_reads"] == want.pte_reads and out["result"] == ("ok" if want.ok else "fault")
    if want.ok:
        assert out["pa"] == hex(want.pa or 0)
    else:
        assert out["fault"]["cause"] == int(want.fault.cause)  # type: ignore[union-attr]
    main(_args(image, ex, "--explain"))
    text = capsys.readouterr().out
    assert f"(read {want.pte_reads})" in text and "hgatp" in text
    main(_args(image, ex))
    text = capsys.readouterr().out
    assert text.splitlines()[-1].startswith("memory accesses: ")


def test_walk_hgatp_needs_an_image_and_a_known_mode(tmp_path, capsys):
    ex = make_exercise(5, 1, ["translate"])
    image = _image(tmp_path, ex)
    args = _args(image, ex)
    args[args.index("--hgatp") + 1] = hex(ex.hgatp & ((1 << 60) - 1) | 3 << 60)
    assert main(args) == 2
    assert "hgatp MODE=3 is not supported; known modes: 0 (Bare), 8 (Sv39x4), 9 (Sv48x4)" in capsys.readouterr().err
    assert (
        main(
            [
                "mmu",
                "walk",
                "--image",
                image,
                "--base",
                hex(RAM_BASE),
                "--satp",
                "0",
                "--va",
                "0",
                "--access",
                "load",
                "--priv",
                "S",
                "--vs-mxr",
            ]
        )
        == 2
    )
    assert "--vs-mxr goes with --hgatp" in capsys.readouterr().err


def test_walk_hgatp_update_ad_writes_both_stages_into_the_image(tmp_path, capsys):
    ex = next(e for e in (make_exercise(s, 1, ["ad-write"]) for s in range(50)) if e.solve().ok)
    image = _image(tmp_path, ex)
    before = open(image, "rb").read()
    assert main(_args(image, ex, "--json")) == 0
    reported = json.loads(capsys.readouterr().out)["ad_writes"]
    assert reported and open(image, "rb").read() == before  # reported only
    assert main(_args(image, ex, "--json", "--update-ad")) == 0
    capsys.readouterr()
    after = open(image, "rb").read()
    for write in reported:
        offset = int(write["pte_addr"], 16) - RAM_BASE
        assert struct.unpack_from("<Q", after, offset)[0] == int(write["new"], 16)
