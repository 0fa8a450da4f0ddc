"""Every shipped device driver passes 500 seeds of varied device timing (a file of its own: it is long)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwsim.board import DEFAULT_BOARD, load_board
from hwsim.driver import build_driver
from hwsim.driver.explore import explore

DRIVERS = Path(__file__).resolve().parents[1] / "drivers"
BOARD = load_board(DEFAULT_BOARD)


def wasm_of(path: Path) -> bytes:
    return build_driver(path).read_bytes()


@pytest.mark.parametrize("driver, device", [("virtio_blk", "blk0"), ("virtio_net", None), ("nvme", "nvme0")])
def test_the_shipped_device_drivers_pass_500_seeds(driver, device, tmp_path):
    options: dict = {"uart0": {"backend": "memory"}}
    if device:
        image = tmp_path / "disk.img"
        image.write_bytes(bytes(2048 * 512))
        options[device] = {"image": str(image)}
    result = explore(BOARD, wasm_of(DRIVERS / driver), range(500), options=options)
    assert result.ok, result.report.format()
    assert len(result.seeds) == 500
