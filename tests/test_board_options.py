"""hwsim.board.options: device options from ``--option DEV.KEY=VALUE`` and the pytest plugin, typed by declaration."""

from __future__ import annotations

import pytest

from hwsim.board import DEFAULT_BOARD, BoardError, load_board
from hwsim.board.options import check_overrides, parse_options
from hwsim.cli import main
from hwsim.errors import ConfigError
from hwsim.runtime.api import _wat_to_wasm
from hwsim.testing import make_board

VIRT = load_board(DEFAULT_BOARD)

# Reads the virtio-blk DeviceFeatures word 0 and returns VIRTIO_BLK_F_RO (bit 5).
WAT_READONLY = """(module
  (import "hwsim" "mmio_map" (func $map (param i32 i32) (result i32)))
  (memory 1) (data (i32.const 16) "blk0")
  (func (export "probe") (result i32) (local $blk i32)
    (local.set $blk (call $map (i32.const 16) (i32.const 4)))
    (i32.store offset=0x14 (local.get $blk) (i32.const 0))
    (i32.and (i32.shr_u (i32.load offset=0x10 (local.get $blk)) (i32.const 5)) (i32.const 1))))"""


def test_values_are_read_as_the_declared_type():
    parsed = parse_options(
        VIRT,
        [
            "blk0.queue_size=08",
            "blk0.serial=0123",
            "blk0.readonly=true",
            "iommu.iotlb_entries=0x40",
            "iommu.fault_irq=Off",
            "net0.rx_backlog=1_000",
            "uart0.backend=memory",
            "blk0.image=",
        ],
    )
    assert parsed == {
        "blk0": {"queue_size": 8, "serial": "0123", "readonly": True, "image": ""},
        "iommu": {"iotlb_entries": 0x40, "fault_irq": False},
        "net0": {"rx_backlog": 1000},
        "uart0": {"backend": "memory"},
    }


@pytest.mark.parametrize(
    "word, value",
    [
        ("true", True),
        ("yes", True),
        ("on", True),
        ("1", True),
        ("TRUE", True),
        ("false", False),
        ("no", False),
        ("off", False),
        ("0", False),
    ],
)
def test_every_boolean_word(word, value):
    assert parse_options(VIRT, [f"blk0.readonly={word}"]) == {"blk0": {"readonly": value}}


def test_the_last_value_of_a_key_wins():
    assert parse_options(VIRT, ["blk0.queue_size=8", "blk0.queue_size=16"]) == {"blk0": {"queue_size": 16}}


@pytest.mark.parametrize(
    "item, message",
    [
        (
            "blk0.readonly=maybe",
            "--option blk0.readonly=maybe: readonly must be a boolean (true/false, yes/no, on/off or 1/0), not 'maybe'",
        ),
        (
            "blk0.readonly=",
            "--option blk0.readonly=: readonly must be a boolean (true/false, yes/no, on/off or 1/0), not ''",
        ),
        (
            "blk0.queue_size=eight",
            "--option blk0.queue_size=eight: queue_size must be an integer (decimal or 0x hex), not 'eight'",
        ),
        (
            "blk0.queue_size=0o17",
            "--option blk0.queue_size=0o17: queue_size must be an integer (decimal or 0x hex), not '0o17'",
        ),
        (
            "blk0.queue_size=0x",
            "--option blk0.queue_size=0x: queue_size must be an integer (decimal or 0x hex), not '0x'",
        ),
        (
            "blk0.queue_size=12k",
            "--option blk0.queue_size=12k: queue_size must be an integer (decimal or 0x hex), not '12k'",
        ),
        (
            "blk0.readonyl=1",
            "--option blk0.readonyl=1: blk0 (virtio-blk) has no option 'readonyl'; did you mean "
            "'readonly'? (its options: bad_sectors, bandwidth, image, latency_ns, queue_size, readonly, serial)",
        ),
        (
            "blkk0.image=disk.img",
            "--option blkk0.image=disk.img: board 'virt' has no device 'blkk0'; did you mean "
            "'blk0'? (devices: blk0, clint, dma0, iommu, net0, nvme0, plic, rtc0, uart0)",
        ),
        (
            "gpu0.mode=fast",
            "--option gpu0.mode=fast: board 'virt' has no device 'gpu0' (devices: blk0, clint, dma0, "
            "iommu, net0, nvme0, plic, rtc0, uart0)",
        ),
        ("blk0image", "--option takes DEV.KEY=VALUE, not 'blk0image'"),
        ("blk0.=1", "--option takes DEV.KEY=VALUE, not 'blk0.=1'"),
    ],
)
def test_bad_items_name_the_item_and_what_was_expected(item, message):
    with pytest.raises(ConfigError) as info:
        parse_options(VIRT, [item])
    assert str(info.value) == message


def test_ranges_are_still_checked_by_the_board():
    with pytest.raises(BoardError, match=r"\[devices.blk0\] queue_size: must be a power of 2, not 12"):
        VIRT.build(options=parse_options(VIRT, ["blk0.queue_size=12"]))


def test_plugin_options_get_a_did_you_mean():
    with pytest.raises(ConfigError) as info:
        make_board(options={"blk0": {"read_only": True}})
    assert str(info.value) == (
        "hwsim options: blk0 (virtio-blk) has no option 'read_only'; did you mean 'readonly'? "
        "(its options: bad_sectors, bandwidth, image, latency_ns, queue_size, readonly, serial)"
    )
    with pytest.raises(ConfigError, match="hwsim options: board 'virt' has no device 'net1'; did you mean 'net0'?"):
        make_board(options={"net1": {"backend": "loopback"}})
    check_overrides(VIRT, {"blk0": "readonly"})  # the board says what is wrong with that
    with pytest.raises(BoardError, match=r"\[devices.blk0\]: option override must be a dict"):
        make_board(options={"blk0": "readonly"})
    system, _ = make_board(options={"blk0": {"readonly": True}})
    assert system.device("blk0").disk.readonly


def test_hwsim_run_makes_a_disk_read_only(tmp_path, capsys):
    driver = tmp_path / "features.wasm"
    driver.write_bytes(_wat_to_wasm(WAT_READONLY))
    image = tmp_path / "disk.img"
    image.write_bytes(bytes(4096))
    args = ["run", "virt", str(driver), "--option", f"blk0.image={image}", "--option", "uart0.backend=memory"]
    assert main([*args, "--option", "blk0.readonly=yes"]) == 0
    assert "driver returned 1" in capsys.readouterr().err
    assert main([*args, "--option", "blk0.readonly=off"]) == 0
    assert "driver returned 0" in capsys.readouterr().err
    assert main([*args, "--option", "blk0.queue_size=08", "--option", "blk0.serial=0123"]) == 0
    capsys.readouterr()
    assert main([*args, "--option", "blk0.readonly=sure"]) == 2
    assert "hwsim: error: --option blk0.readonly=sure: readonly must be a boolean" in capsys.readouterr().err
