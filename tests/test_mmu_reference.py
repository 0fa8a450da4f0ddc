"""hwsim's walker and CPU path against references, on random page tables.

* QEMU's own Sv39/Sv48 walker (Unicorn ``UC_TLB_CPU`` mode) and hwsim's
  Machine (every translation through hwsim) run the same access from the same
  RAM image: outcome, exception cause, loaded value and the whole RAM after
  (A/D updates, stored data) must agree, and both must agree with hwsim's
  walker's prediction.
* For what QEMU 5.0 does not check (PTE bits 63:54, reserved non-leaf D/A/U),
  hwsim's walker and CPU are compared with an independent transcription of
  the specification (``spec_walk.py``).
"""

from __future__ import annotations

import struct

import pytest
from cpu_probe import RAM_BASE, STORE_TAG, HwsimProbe, QemuProbe
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pt_gen import cases
from spec_walk import spec_translate

from hwsim.errors import BusError
from hwsim.mmu.bits import SV39, SV48, satp_fields
from hwsim.mmu.walker import QUICK_INVALID, AdPolicy, FaultReason, RamWords, walk, walk_quick
from hwsim.riscv import asm as A
from hwsim.riscv.priv import Access, Priv


class BytesMem:
    """A bytearray as physical memory at RAM_BASE (what the walker reads)."""

    def __init__(self, ram: bytearray) -> None:
        self.ram = ram

    def _off(self, pa: int) -> int:
        off = pa - RAM_BASE
        if off < 0 or off + 8 > len(self.ram):
            raise BusError("outside", address=pa, size=8)
        return off

    def read_u64(self, pa: int) -> int:
        return struct.unpack_from("<Q", self.ram, self._off(pa))[0]

    def write_u64(self, pa: int, value: int) -> None:
        struct.pack_into("<Q", self.ram, self._off(pa), value)


@pytest.fixture(scope="module")
def probes():
    return QemuProbe(), HwsimProbe()


def predict(case, ad=AdPolicy.REPORT):
    mem = BytesMem(bytearray(case.ram) if ad is AdPolicy.UPDATE else case.ram)
    _mode, _asid, root_ppn = satp_fields(case.satp)
    result = walk(
        mem, root_ppn << 12, case.va, case.access, case.priv, mode=case.mode, sum=case.sum, mxr=case.mxr, ad=ad
    )
    return result, mem.ram


def check_against_cpus(probes, case):
    qemu, hwsim = probes
    result, _ = predict(case)
    if result.ok and case.access is Access.FETCH:
        struct.pack_into("<I", case.ram, result.translation.pa - RAM_BASE, A.ECALL)
    args = (case.ram, case.satp, case.va, case.access, case.priv, case.sum, case.mxr)
    q_out, q_ram = qemu.run(*args)
    h_out, h_ram = hwsim.run(*args)

    # 1. hwsim's CPU path and QEMU's agree on everything observable.
    assert h_out == q_out
    assert h_ram == q_ram, "RAM differs after the access (A/D bits or stored data)"

    # 2. and both agree with the walker's prediction.
    if not result.ok:
        assert q_out.kind == "exception" and q_out.cause == int(result.fault.cause), result.fault
        return
    pa = result.translation.pa
    if case.access is Access.LOAD:
        assert q_out == ("ok", None, pa) or (q_out.kind, q_out.value) == ("ok", pa)
    elif case.access is Access.STORE:
        assert q_out.kind == "ok"
        assert struct.unpack_from("<Q", q_ram, pa - RAM_BASE)[0] == STORE_TAG
    else:
        assert q_out.kind == "exception" and q_out.cause == (8 if case.priv is Priv.U else 9)
    # 3. the A/D update the walker makes is the one the CPUs made.
    _, updated = predict(case, AdPolicy.UPDATE)
    leaf = result.translation.pte_addr - RAM_BASE
    assert updated[leaf : leaf + 8] == q_ram[leaf : leaf + 8]


SETTINGS = settings(
    max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@SETTINGS
@given(case=cases(SV39))
def test_sv39_agrees_with_qemu_on_random_tables(probes, case):
    check_against_cpus(probes, case)


@settings(SETTINGS, max_examples=1000)
@given(case=cases(SV48))
def test_sv48_agrees_with_qemu_on_random_tables(probes, case):
    check_against_cpus(probes, case)


def spec_outcome(case):
    return spec_translate(
        bytes(case.ram), RAM_BASE, case.satp, case.va, case.access.value, case.priv.name, case.sum, case.mxr
    )


@settings(SETTINGS, max_examples=3000)
@given(case=cases(SV39, reserved=True))
def test_walker_agrees_with_spec_transcription_including_reserved_bits(case):
    result, _ = predict(case)
    expected = spec_outcome(case)
    if expected[0] == "fault":
        assert not result.ok and int(result.fault.cause) == expected[1], (result.fault, expected)
    else:
        assert result.ok, result.fault
        assert result.translation.pa == expected[1]
        new = expected[2]
        assert (result.ad_update[2] if result.ad_update else None) == new


@settings(SETTINGS, max_examples=1000)
@given(case=cases(SV48, reserved=True))
def test_sv48_walker_agrees_with_spec_transcription(case):
    result, _ = predict(case)
    expected = spec_outcome(case)
    assert result.ok == (expected[0] == "ok")
    if result.ok:
        assert result.translation.pa == expected[1]
    else:
        assert int(result.fault.cause) == expected[1]


@settings(SETTINGS, max_examples=1000)
@given(case=cases(SV39, reserved=True))
def test_cpu_path_faults_on_reserved_bits_as_the_spec_says(probes, case):
    """QEMU 5.0 ignores these bits, so here the CPU path is held to the spec transcription."""
    _qemu, hwsim = probes
    expected = spec_outcome(case)
    if expected[0] == "ok" and case.access is Access.FETCH:
        struct.pack_into("<I", case.ram, expected[1] - RAM_BASE, A.ECALL)
    out, ram = hwsim.run(case.ram, case.satp, case.va, case.access, case.priv, case.sum, case.mxr)
    if expected[0] == "fault":
        assert (out.kind, out.cause) == ("exception", expected[1])
    elif case.access is Access.LOAD:
        assert (out.kind, out.value) == ("ok", expected[1])
    elif case.access is Access.STORE:
        assert out.kind == "ok"
        assert struct.unpack_from("<Q", ram, expected[1] - RAM_BASE)[0] == STORE_TAG
    else:
        assert out.cause == (8 if case.priv is Priv.U else 9)


def check_quick_walk(case, ad):
    """walk_quick answers exactly what walk answers (same translation, same RAM after), or says it
    cannot: INVALID exactly when walk stops on V=0, None for every other fault and nothing written."""
    _mode, _asid, root_ppn = satp_fields(case.satp)
    args = (root_ppn << 12, case.va, case.access, case.priv)
    slow_ram, quick_ram = bytearray(case.ram), bytearray(case.ram)
    result = walk(BytesMem(slow_ram), *args, mode=case.mode, sum=case.sum, mxr=case.mxr, ad=ad)
    ram = RamWords.for_region(RAM_BASE, memoryview(quick_ram))
    assert ram is not None  # a little-endian host
    quick = walk_quick(ram, *args, case.sum, case.mxr, case.mode, ad)
    if result.ok:
        assert quick == result.translation
        assert quick_ram == slow_ram  # the same A/D update (or none, for REPORT)
    else:
        assert quick is (QUICK_INVALID if result.fault.reason is FaultReason.INVALID else None), result.fault
        assert quick_ram == case.ram  # a fault writes nothing


@settings(SETTINGS, max_examples=1500)
@given(case=cases(SV39, reserved=True), ad=st.sampled_from(list(AdPolicy)))
def test_quick_walk_agrees_with_the_walker(case, ad):
    check_quick_walk(case, ad)


@settings(SETTINGS, max_examples=500)
@given(case=cases(SV48, reserved=True), ad=st.sampled_from(list(AdPolicy)))
def test_sv48_quick_walk_agrees_with_the_walker(case, ad):
    check_quick_walk(case, ad)


@settings(SETTINGS, max_examples=200)
@given(case=cases(SV39))
def test_quick_walk_declines_tables_outside_its_ram(case):
    """A PTE address outside the words' region is not read: None (walk() reads it where it is)."""
    _mode, _asid, root_ppn = satp_fields(case.satp)
    window = RamWords.for_region(RAM_BASE + 0x1000_0000, memoryview(bytearray(4096)))
    assert window is not None
    args = (root_ppn << 12, case.va, case.access, case.priv, case.sum, case.mxr, case.mode, AdPolicy.UPDATE)
    assert walk_quick(window, *args) is None
