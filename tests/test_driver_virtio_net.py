"""drivers/virtio_net: the C virtio-net driver, sandboxed on the virt board (loopback and pcap backends) and
as native firmware, with a clean DMA report."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hwsim.board import DEFAULT_BOARD
from hwsim.devices.pcap import read_pcap, write_pcap
from hwsim.driver import build_driver
from hwsim.driver.firmware import FirmwareRun
from hwsim.errors import ConfigError
from hwsim.testing import make_board

DRIVER = Path(__file__).resolve().parents[1] / "drivers" / "virtio_net"
MAC = bytes.fromhex("525400123456")


def driver_frame(n: int, mac: bytes = MAC) -> bytes:
    """Frame n as drivers/virtio_net/virtio_net.c makes it (make_frame)."""
    length = 1514 if n % 8 == 7 else 60 + (n * 193) % (1514 - 60)
    out = bytearray(mac + mac + b"\x88\xb5")
    out += bytes((n * 31 + i * 7) & 0xFF for i in range(14, length))
    out[14:18] = (n & 0xFFFF_FFFF).to_bytes(4, "little")
    return bytes(out)


def fnv1a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x0100_0193) & 0xFFFF_FFFF
    return h


def assert_clean(result) -> None:
    """Nothing left mapped, no DMA bug, no device issue, and the device reset."""
    report = result.report
    assert report.ok and report.dma_reports == [] and report.device_issues == [], report.format()
    mappings = list(result.run.dma.by_start.values())
    assert mappings and all(m.unmapped_by for m in mappings)
    assert result.run.system.device("net0").status == 0


def test_loopback_frames_come_back_identical(hwsim_driver):
    result = hwsim_driver(DRIVER)
    assert result.report.result == 16, result.report.format()
    assert result.log == ["virtio_net: 16 frames sent and received back (mac 52:54:00:12:34:56)"]
    assert_clean(result)
    stats = result.run.system.device("net0").stats
    assert (stats.tx_frames, stats.rx_frames, stats.rx_dropped, stats.tx_errors, stats.rx_errors) == (16, 16, 0, 0, 0)
    assert stats.tx_bytes == stats.rx_bytes == sum(len(driver_frame(n)) for n in range(16))
    coherent = [m for m in result.run.dma.by_start.values() if m.coherent]
    streaming = [m for m in result.run.dma.by_start.values() if not m.coherent]
    assert len(coherent) == 1 and len(streaming) == 8 + 16  # receive buffers once, each frame sent
    assert {m.direction.name for m in streaming} == {"FROM_DEVICE", "TO_DEVICE"}


def test_mac_from_the_configuration_space(hwsim_driver):
    result = hwsim_driver(
        DRIVER, entry="send", args=(2,), options={"net0": {"mac": "02:11:22:33:44:55"}}, net_capture=True
    )
    mac = bytes.fromhex("021122334455")
    assert result.report.result == 2 and result.net_output == [driver_frame(0, mac), driver_frame(1, mac)]
    assert_clean(result)


def test_transmitted_frames_are_captured(hwsim_driver):
    result = hwsim_driver(DRIVER, entry="send", args=(9,), net_capture=True)
    assert result.report.result == 9 and result.log == ["virtio_net: sent 9 frames"]
    assert result.net_output == [driver_frame(n) for n in range(9)]
    assert_clean(result)


def test_frames_from_an_rx_pcap_are_received(hwsim_driver):
    frames = [MAC + MAC + b"\x08\x00" + bytes(range(n % 256)) * (1 + n // 256) for n in (0, 46, 1000, 200, 1500, 7)]
    frames = [f[:1514] for f in frames]
    result = hwsim_driver(DRIVER, entry="receive", args=(100,), net_input=frames)
    assert result.report.result == 6, result.report.format()
    lines = [f"virtio_net: frame {i}: {len(f)} bytes, fnv1a {fnv1a(f):08x}" for i, f in enumerate(frames)]
    assert result.log == lines + ["virtio_net: received 6 frames"]
    # The last frame comes 5 ms after DRIVER_OK, then the driver is idle: nothing waits for the 10 s
    # limit.  Each MMIO access also takes 100 ns of virtual time (the board's mmio_access_ticks), and the
    # instructions the driver executes theirs (instructions_per_us, charged per quantum of 1 us).
    report = result.report
    cpu_ns = result.run.cpu_time.charged_ns
    assert 5_000_000 < report.virtual_ns <= 5_000_000 + 100 * report.mmio_accesses + cpu_ns + 1000
    assert result.net_output == []
    assert_clean(result)


def test_a_burst_overflows_buffers_and_backlog_and_the_drops_are_counted(hwsim_driver, tmp_path):
    burst = tmp_path / "burst.pcap"
    frames = [MAC + MAC + b"\x88\xb5" + bytes([n]) * 50 for n in range(20)]
    write_pcap(burst, [(0, f) for f in frames])  # 20 frames at one instant
    result = hwsim_driver(DRIVER, entry="receive", args=(100,), net_input=burst, options={"net0": {"rx_backlog": 4}})
    assert result.report.result == 12  # 8 receive buffers + 4 in the backlog
    assert result.log[:12] == [
        f"virtio_net: frame {i}: 64 bytes, fnv1a {fnv1a(f):08x}" for i, f in enumerate(frames[:12])
    ]
    stats = result.run.system.device("net0").stats
    assert (stats.rx_frames, stats.rx_dropped) == (12, 8)
    assert_clean(result)


def test_pingpong_and_net_output_needs_a_capture(hwsim_driver):
    result = hwsim_driver(DRIVER, entry="pingpong", args=(30,))
    assert result.report.result == 0 and result.run.system.device("net0").stats.rx_frames == 30
    assert_clean(result)
    with pytest.raises(ConfigError, match=r"no frames were captured: pass net_input=\.\.\. or net_capture=True"):
        _ = result.net_output


def test_native_firmware_runs_the_same_sources():
    elf = build_driver(DRIVER, native=True)
    system, _ = make_board(DEFAULT_BOARD)
    run = FirmwareRun(system, elf.read_bytes())
    report = run.run()
    assert report.result == 16 and run.log == ["virtio_net: 16 frames sent and received back (mac 52:54:00:12:34:56)"]
    assert report.device_issues == [] and system.device("net0").stats.rx_frames == 16


def test_hwsim_run_with_pcap_files(tmp_path):
    rx, tx = tmp_path / "in.pcap", tmp_path / "out.pcap"
    write_pcap(rx, [MAC + MAC + b"\x08\x00" + bytes(50)] * 3)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "hwsim",
            "run",
            str(DEFAULT_BOARD),
            str(DRIVER),
            "--invoke",
            "receive",
            "10",
            "--option",
            "net0.backend=pcap",
            "--option",
            f"net0.rx={rx}",
            "--option",
            f"net0.tx={tx}",
        ],
        input=b"",
        capture_output=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    # The third frame 2 ms after DRIVER_OK, plus 100 ns per MMIO access: not the 10 s limit.
    assert b"driver returned 3" in out.stderr and b"virtual time: 2.00" in out.stderr
    assert read_pcap(tx) == []
    rx.write_bytes(b"not a capture file, far too short")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "hwsim",
            "run",
            str(DEFAULT_BOARD),
            str(DRIVER),
            "--option",
            "net0.backend=pcap",
            "--option",
            f"net0.rx={rx}",
        ],
        input=b"",
        capture_output=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert out.stderr.decode().strip() == (
        f"hwsim: error: option 'rx': '{rx}': not a pcap file (magic number "
        f"6e6f7420; expected a1b2c3d4 or a1b23c4d, pcapng is not supported)"
    )
