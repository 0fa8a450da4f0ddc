"""hwsim.devices.plic: priorities, pending, per-context enable and threshold, claim/complete, outputs, misuse."""

from __future__ import annotations

import pytest

from hwsim.devices import Plic

PRIO = 0x0
PENDING = 0x1000
ENABLE = 0x2000
CTX = 0x20_0000


@pytest.fixture
def plic():
    return Plic(name="plic", sources=40, contexts=2)


def enable(p, ctx, *sources):
    words = {}
    for s in sources:
        words[s // 32] = words.get(s // 32, 0) | 1 << (s % 32)
    for w, bits in words.items():
        p.mmio_write(ENABLE + 0x80 * ctx + 4 * w, 4, bits)


def prio(p, source, value):
    p.mmio_write(PRIO + 4 * source, 4, value)


def claim(p, ctx):
    return p.mmio_read(CTX + 0x1000 * ctx + 4, 4)


def complete(p, ctx, source):
    p.mmio_write(CTX + 0x1000 * ctx + 4, 4, source)


def test_pending_and_claim_follow_priority_then_lowest_id(plic):
    for s, pr in ((3, 2), (5, 6), (7, 6), (35, 1)):
        prio(plic, s, pr)
        plic.set_level(s, True)
    enable(plic, 0, 3, 5, 7, 35)
    assert plic.mmio_read(PENDING, 4) == (1 << 3) | (1 << 5) | (1 << 7)
    assert plic.mmio_read(PENDING + 4, 4) == 1 << 3  # source 35
    assert plic.output(0) and not plic.output(1)
    assert [claim(plic, 0) for _ in range(5)] == [5, 7, 3, 35, 0]
    assert not plic.output(0)
    assert plic.mmio_read(PENDING, 4) == 0


def test_threshold_and_priority_zero(plic):
    prio(plic, 4, 3)
    prio(plic, 6, 0)  # priority 0 never interrupts
    enable(plic, 1, 4, 6)
    plic.set_level(4, True)
    plic.set_level(6, True)
    plic.mmio_write(CTX + 0x1000, 4, 3)  # threshold 3: priority must be above it
    assert not plic.output(1) and claim(plic, 1) == 0
    plic.mmio_write(CTX + 0x1000, 4, 2)
    assert plic.output(1) and claim(plic, 1) == 4
    assert claim(plic, 1) == 0


def test_level_sources_request_again_after_complete(plic):
    prio(plic, 9, 1)
    enable(plic, 0, 9)
    plic.set_level(9, True)
    assert claim(plic, 0) == 9
    plic.set_level(9, False)
    plic.set_level(9, True)  # still in service: no new request yet
    assert not plic.is_pending(9)
    complete(plic, 0, 9)
    assert plic.is_pending(9)  # the line is still high
    assert claim(plic, 0) == 9
    plic.set_level(9, False)
    complete(plic, 0, 9)
    assert not plic.is_pending(9) and not plic.output(0)


def test_disabled_source_stays_pending_and_other_context_sees_it(plic):
    prio(plic, 2, 1)
    plic.set_level(2, True)
    enable(plic, 1, 2)
    assert claim(plic, 0) == 0 and plic.is_pending(2)
    assert claim(plic, 1) == 2


def test_output_listener(plic):
    seen = []
    plic.on_output(lambda ctx, level: seen.append((ctx, level)))
    prio(plic, 1, 1)
    enable(plic, 0, 1)
    line = plic.line(1)
    line.set(True)
    claim(plic, 0)
    assert seen == [(0, True), (0, False)]
    with pytest.raises(ValueError, match="interrupt source 40 is out of range 1..39"):
        plic.line(40)


def test_priority_is_warl_and_registers_read_back(plic):
    prio(plic, 1, 0xFF)
    assert plic.mmio_read(PRIO + 4, 4) == 7
    plic.mmio_write(CTX, 4, 5)
    assert plic.mmio_read(CTX, 4) == 5
    enable(plic, 0, 1, 33)
    assert (plic.mmio_read(ENABLE, 4), plic.mmio_read(ENABLE + 4, 4)) == (2, 2)
    assert plic.issues == []


def test_misuse_is_recorded(plic):
    plic.mmio_read(PRIO, 4)  # source 0 has no priority register
    plic.mmio_write(ENABLE, 4, 1)  # bit 0: source 0 does not exist
    plic.mmio_write(ENABLE + 4, 4, 1 << 9)  # source 41 does not exist (40 sources)
    plic.mmio_write(PENDING, 4, 1)
    complete(plic, 0, 3)  # not enabled
    enable(plic, 0, 3)
    complete(plic, 0, 3)  # not claimed
    complete(plic, 0, 99)
    plic.mmio_read(CTX + 4, 2)
    assert [i.message for i in plic.issues] == [
        "read of 4 byte(s) at offset 0x0: no register there",
        "write of 0x1 to ENABLE0_0 sets reserved bits 0x1 (ignored)",
        "write of 0x200 to ENABLE0_1 sets reserved bits 0x200 (ignored)",
        "write of 0x1 to read-only register PENDING0",
        "CLAIM0: completion of interrupt 3, which is not enabled for context 0 (ignored)",
        "CLAIM0: completion of interrupt 3, which was not claimed",
        "CLAIM0: completion of interrupt 99, which does not exist (sources 1..39)",
        "2-byte read at offset 0x200004: CLAIM0 is 4 byte(s) wide at offset 0x200004",
    ]


def test_reset_keeps_high_lines_pending(plic):
    prio(plic, 2, 1)
    enable(plic, 0, 2)
    plic.set_level(2, True)
    claim(plic, 0)
    plic.reset()
    assert plic.is_pending(2) and plic.mmio_read(PRIO + 8, 4) == 0  # priority back to 0: no output
    assert not plic.output(0)


def test_required_size_depends_on_contexts():
    assert Plic.required_size({"sources": 32, "contexts": 2}) == 0x20_2000
    assert Plic.required_size({"sources": 32, "contexts": 64}) == 0x24_0000
    big = Plic(name="big", sources=1024, contexts=64)  # the largest map hwsim builds
    assert len(big.LAYOUT.registers) == 1023 + 32 + 64 * (32 + 2)
