"""docs/devices.md stays true: register tables generated from the declared layouts, every board key documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwsim.board import BOARD_KEYS
from hwsim.devices.base import DEVICE_TYPES
from hwsim.devices.layouts import DMA_LAYOUT, RTC_LAYOUT, TIMER_LAYOUT, UART_LAYOUT
from hwsim.devices.nvme_bits import NVME_LAYOUT
from hwsim.devices.virtio.bits import MMIO_LAYOUT
from hwsim.iommu.bits import IOMMU_LAYOUT

DOC = (Path(__file__).resolve().parents[1] / "docs" / "devices.md").read_text()


@pytest.mark.parametrize(
    "layout",
    [UART_LAYOUT, TIMER_LAYOUT, RTC_LAYOUT, DMA_LAYOUT, IOMMU_LAYOUT, MMIO_LAYOUT, NVME_LAYOUT],
    ids=lambda l: l.device_type,
)
def test_register_tables_match_the_declared_layouts(layout):
    assert layout.markdown_table() in DOC


def test_every_board_key_and_device_option_is_documented():
    for table, keys in BOARD_KEYS.items():
        for key in keys:
            assert f"`{key}`" in DOC, (table, key)
    for type_name, cls in DEVICE_TYPES.items():
        if type_name.endswith("-test"):
            continue
        assert f"`{type_name}`" in DOC
        for option in cls.OPTIONS:
            assert f"`{option}`" in DOC, (type_name, option)
