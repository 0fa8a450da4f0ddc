"""hwsim.board: board files as data, their validation (every error path, exact messages), and building a System."""

from __future__ import annotations

import tomllib

import pytest

from hwsim.board import DEFAULT_BOARD, BoardError, load_board, parse_board
from hwsim.devices import Device, IssueKind, Uart
from hwsim.devices.base import DEVICE_TYPES, register_device
from hwsim.devices.layouts import UART_LAYOUT
from hwsim.errors import ConfigError, HwsimError

MINI = """\
[board]
name = "mini"

[[ram]]
name = "ram"
base = 0x8000_0000
size = 0x10_0000

[interrupt_controller]
type = "plic"
base = 0x0c00_0000
size = 0x40_0000
sources = 32

[iommu]
type = "riscv-iommu"
base = 0x0301_0000
size = 0x1000
irq = 5

[devices.uart0]
type = "ns16550a"
base = 0x1000_0000
size = 0x1000
irq = 10
backend = "memory"

[devices.dma0]
type = "dma"
base = 0x1002_0000
size = 0x2000
irq = 11
iommu_device_id = 1
"""


def write(tmp_path, text, name="mini.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def load_error(tmp_path, text) -> str:
    path = write(tmp_path, text)
    with pytest.raises(BoardError) as info:
        load_board(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    return message[len(str(path)) + 2 :]


def edit(old, new, text=MINI):
    assert old in text, old
    return text.replace(old, new, 1)


def test_the_default_board_loads_and_builds():
    board = load_board(DEFAULT_BOARD)
    assert board.name == "virt" and board.clock_hz == 10_000_000
    assert [(hex(b), hex(s), n, k) for b, s, n, k in board.memory_map()] == [
        ("0x101000", "0x1000", "rtc0", "goldfish-rtc"),
        ("0x2000000", "0x10000", "clint", "clint"),
        ("0x3010000", "0x1000", "iommu", "riscv-iommu"),
        ("0xc000000", "0x600000", "plic", "plic"),
        ("0x10000000", "0x1000", "uart0", "ns16550a"),
        ("0x10001000", "0x1000", "blk0", "virtio-blk"),
        ("0x10002000", "0x1000", "net0", "virtio-net"),
        ("0x10020000", "0x2000", "dma0", "dma"),
        ("0x10030000", "0x2000", "nvme0", "nvme"),
        ("0x80000000", "0x8000000", "ram", "ram"),
    ]
    s = board.build(options={"uart0": {"backend": "memory"}})
    assert sorted(s.devices) == ["blk0", "clint", "dma0", "iommu", "net0", "nvme0", "plic", "rtc0", "uart0"]
    assert s.irqc is s.device("plic") and s.iommu is s.device("iommu")
    assert s.device("uart0").irq.number == 10 and s.device("dma0").dma_port.device_id == 1
    assert s.device("net0").irq.number == 2 and s.device("net0").dma_port.device_id == 3
    assert [r.name for r in s.machine.phys.mmio_regions] == [
        "rtc0",
        "clint",
        "iommu",
        "plic",
        "uart0",
        "blk0",
        "net0",
        "dma0",
        "nvme0",
    ]
    assert s.machine.ram.base == 0x8000_0000 and s.machine.ram.size == 128 << 20
    with pytest.raises(
        ConfigError,
        match=r"board 'virt' has no device 'uart1' \(devices: blk0, clint, dma0, iommu, net0, nvme0, plic, rtc0, uart0\)",
    ):
        s.device("uart1")


def test_build_with_extra_ram_and_issue_report(tmp_path):
    text = MINI + '\n[[ram]]\nname = "sram"\nbase = 0x2000_0000\nsize = 0x4000\n'
    s = load_board(write(tmp_path, text)).build()
    assert [r.name for r in s.machine.phys.ram_regions] == ["sram", "ram"]
    s.machine.phys.write(0x2000_0010, b"x")
    s.device("dma0").mmio_write(0, 4, 1)
    s.advance(5)
    s.device("uart0").mmio_write(5, 1, 1)
    assert s.format_issues() == (
        "[t=0] dma0: write of 0x1 to read-only register ID\n[t=5] uart0: write of 0x1 to read-only register LSR"
    )
    s.reset()
    assert len(s.issues()) == 2


@pytest.mark.parametrize(
    "text, message",
    [
        ("[board\n", "not valid TOML: Expected ']' at the end of a table declaration (at line 1, column 7)"),
        (
            MINI + "[boards]\nx = 1\n",
            "unknown table 'boards'; did you mean 'board'? (known: board, clock, devices, interrupt_controller, iommu, ram)",
        ),
        (MINI.replace('[board]\nname = "mini"\n', ""), "[board]: missing required table"),
        (edit('name = "mini"', ""), "[board] name: missing required key"),
        (edit('name = "mini"', "name = 5"), "[board] name: must be a string, not int 5"),
        (
            edit('name = "mini"', 'name = "mini"\nrevision = 2'),
            "[board] revision: unknown key 'revision' (known: description, harts, name)",
        ),
        (MINI + "[clock]\nfrequency_hz = 0\n", "[clock] frequency_hz: must be positive, not 0"),
        (
            MINI + "clock = 3\n",
            "[devices.dma0] clock: unknown key 'clock' (known: assignable, bandwidth, base, iommu_device_id, irq, "
            "max_transfer, setup_ns, size, type)",
        ),
        (
            edit('[[ram]]\nname = "ram"\nbase = 0x8000_0000\nsize = 0x10_0000\n', ""),
            "[ram]: missing: a board needs at least one [[ram]] region",
        ),
        (
            "ram = 5\n" + edit('[[ram]]\nname = "ram"\nbase = 0x8000_0000\nsize = 0x10_0000\n', ""),
            "[ram]: must be an array of tables ([[ram]]) with at least one region",
        ),
        (
            edit("size = 0x10_0000", "size = 0x10_0800"),
            "[ram.ram] size: 0x100800 is not a positive multiple of the page size 0x1000",
        ),
        (
            edit("base = 0x8000_0000", "base = 0x8000_0010"),
            "[ram.ram] base: 0x80000010 is not a multiple of the page size 0x1000",
        ),
        (
            edit("base = 0x8000_0000", 'base = "0x8000_0000"'),
            "[ram.ram] base: must be an integer, not str '0x8000_0000'",
        ),
        (
            edit("base = 0x8000_0000", "base = 0xFF_FFFF_FFFF_F000"),
            "[ram.ram] size: the region ends at 0x1000000000ff000, beyond the 56-bit physical address space",
        ),
        (edit('name = "ram"', 'name = "uart0"'), "[devices.uart0]: name 'uart0' is already used by [ram.uart0]"),
        (
            edit('type = "ns16550a"', 'type = "ns16551"'),
            "[devices.uart0] type: unknown device type 'ns16551'; did you mean 'ns16550a'? (known: clint, dma, goldfish-rtc, ns16550a, nvme, virtio-blk, virtio-net)",
        ),
        (
            edit('type = "ns16550a"', 'type = "plic"'),
            "[devices.uart0] type: unknown device type 'plic' (known: clint, dma, goldfish-rtc, ns16550a, nvme, virtio-blk, virtio-net)",
        ),
        (edit('type = "ns16550a"\n', ""), "[devices.uart0] type: missing required key"),
        (edit('type = "riscv-iommu"', 'type = "smmu"'), "[iommu] type: unknown iommu type 'smmu' (known: riscv-iommu)"),
        (
            edit('type = "plic"', 'type = "gic"'),
            "[interrupt_controller] type: unknown interrupt-controller type 'gic' (known: plic)",
        ),
        (
            edit("base = 0x1000_0000\n", "bsae = 0x1000_0000\n"),
            "[devices.uart0] bsae: unknown key 'bsae'; did you mean 'base'? (known: assignable, backend, base, clock_hz, "
            "default_baud, input_file, iommu_device_id, irq, output_file, size, type)",
        ),
        (
            edit("base = 0x1002_0000", "base = 0x1000_0000"),
            "[devices.dma0]: region [0x10000000, 0x10002000) overlaps [devices.uart0] [0x10000000, 0x10001000)",
        ),
        (
            edit("base = 0x0301_0000", "base = 0x8000_0000"),
            "[iommu]: region [0x80000000, 0x80001000) overlaps [ram.ram] [0x80000000, 0x80100000)",
        ),
        (
            edit("size = 0x2000", "size = 0x1800"),
            "[devices.dma0] size: 0x1800 is not a positive multiple of the page size 0x1000",
        ),
        (
            edit("size = 0x2000", "size = 0x1000"),
            "[devices.dma0] size: 0x1000 is too small for dma registers (needs at least 0x2000 bytes)",
        ),
        (
            edit("size = 0x40_0000", "size = 0x20_0000"),
            "[interrupt_controller] size: 0x200000 is too small for plic registers (needs at least 0x202000 bytes)",
        ),
        (edit("irq = 10", "irq = 40"), "[devices.uart0] irq: IRQ 40 is out of range 1..31 (plic has 32 sources)"),
        (edit("irq = 10", "irq = 0"), "[devices.uart0] irq: IRQ 0 is reserved (it means 'no interrupt' at the PLIC)"),
        (edit("irq = 11", "irq = 10"), "[devices.dma0] irq: IRQ 10 is already used by [devices.uart0]"),
        (edit("irq = 10", "irq = 5"), "[devices.uart0] irq: IRQ 5 is already used by [iommu]"),
        (edit("irq = 10", 'irq = "10"'), "[devices.uart0] irq: must be an integer, not str '10'"),
        (edit("irq = 10", "irq = true"), "[devices.uart0] irq: must be an integer, not bool True"),
        (
            edit('[interrupt_controller]\ntype = "plic"\nbase = 0x0c00_0000\nsize = 0x40_0000\nsources = 32\n', ""),
            "[iommu] irq: the board has no [interrupt_controller] to connect it to",
        ),
        (edit("sources = 32", "sources = 2000"), "[interrupt_controller] sources: must be at most 1024, not 2000"),
        (
            edit("iommu_device_id = 1\n", ""),
            "[devices.dma0] iommu_device_id: missing required key (dma devices do DMA, which goes through the IOMMU)",
        ),
        (
            edit('backend = "memory"', 'backend = "memory"\niommu_device_id = 2'),
            "[devices.uart0] iommu_device_id: ns16550a devices do not do DMA",
        ),
        (
            edit("iommu_device_id = 1", "iommu_device_id = 16777216"),
            "[devices.dma0] iommu_device_id: 16777216 is out of range 0..16777215",
        ),
        (
            MINI + '\n[devices.dma1]\ntype = "dma"\nbase = 0x1003_0000\nsize = 0x2000\niommu_device_id = 1\n',
            "[devices.dma1] iommu_device_id: device ID 1 is already used by [devices.dma0]",
        ),
        (
            edit('[iommu]\ntype = "riscv-iommu"\nbase = 0x0301_0000\nsize = 0x1000\nirq = 5\n', ""),
            "[devices.dma0] iommu_device_id: the board has no [iommu]: device DMA needs one",
        ),
        (
            edit('backend = "memory"', 'backend = "tty"'),
            "[devices.uart0] backend: must be one of 'console', 'file', 'memory', not 'tty'",
        ),
        (
            edit('backend = "memory"', 'backend = "file"'),
            "[devices.uart0] output_file: the file backend needs an output file name",
        ),
        (
            edit("[devices.uart0]", '[devices."uart 0"]'),
            "[devices.uart 0]: name 'uart 0' must be letters, digits and '_' (not starting with a digit)",
        ),
        (
            edit("[devices.uart0]\n", "[devices]\nuart0 = 3\n[devices.x]\n"),
            "[devices.uart0]: must be a table, not an integer",
        ),
        (
            edit('[iommu]\ntype = "riscv-iommu"\n', '[iommu]\ntype = "riscv-iommu"\nfault_queue_entries = 3\n'),
            "[iommu] fault_queue_entries: must be a power of two, not 3",
        ),
    ],
)
def test_board_errors(tmp_path, text, message):
    assert load_error(tmp_path, text) == message


def test_board_error_fields_and_missing_file(tmp_path):
    path = tmp_path / "nope.toml"
    with pytest.raises(BoardError) as info:
        load_board(path)
    assert str(info.value) == f"{path}: no such board file"
    assert isinstance(info.value, HwsimError)
    path = write(tmp_path, edit("irq = 10", "irq = 40"))
    with pytest.raises(BoardError) as info:
        load_board(path)
    e = info.value
    assert (e.path, e.table, e.key) == (str(path), "devices.uart0", "irq")
    assert e.problem == "IRQ 40 is out of range 1..31 (plic has 32 sources)"
    binary = tmp_path / "image.bin"
    binary.write_bytes(b"\x7fELF\xb7\x98")
    with pytest.raises(BoardError) as info:
        load_board(binary)
    assert str(info.value) == f"{binary}: not a board file: not UTF-8 text (a board is a TOML file)"


def test_irq_on_a_device_without_an_interrupt_output(tmp_path):
    @register_device
    class Quiet(Device):
        TYPE = "quiet-test"
        LAYOUT = UART_LAYOUT
        HAS_IRQ = False

    try:
        text = MINI + '\n[devices.q]\ntype = "quiet-test"\nbase = 0x1004_0000\nsize = 0x1000\nirq = 3\n'
        assert load_error(tmp_path, text) == "[devices.q] irq: quiet-test devices have no interrupt output"
    finally:
        del DEVICE_TYPES["quiet-test"]


def test_ram_beyond_what_the_host_can_map_names_the_key_and_the_limit(tmp_path):
    """Found by review: a [[ram]] size valid for the board format (under the 56-bit physical space) but too large
    for the host's mmap ended in a raw OSError from Board.build()."""
    huge = MINI.replace("size = 0x10_0000\n", "size = 0x4_0000_0000_0000\n", 1)  # 1 PiB: no host maps that
    board = load_board(write(tmp_path, huge))
    with pytest.raises(BoardError) as info:
        board.build()
    message = str(info.value)
    assert message.startswith(
        f"{tmp_path / 'mini.toml'}: [ram.ram] size: 0x4000000000000 bytes (1 PiB) is "
        f"more than this host can map (mmap: "
    )
    assert "; the host has " in message and message.endswith(" of memory)")
    second = MINI.replace(
        "[interrupt_controller]",
        '[[ram]]\nname = "high"\nbase = 0x10_0000_0000\nsize = 0x4_0000_0000_0000\n\n[interrupt_controller]',
    )
    with pytest.raises(BoardError, match=r"\[ram.high\] size: 0x4000000000000 bytes .* is more than this host"):
        load_board(write(tmp_path, second)).build()


def test_every_option_that_sizes_a_host_allocation_has_a_maximum_the_host_can_build():
    """Queue sizes, FIFO and fault-queue entries, IOTLB entries, PLIC sources and contexts, transfer sizes: each
    is refused past a declared maximum (naming file, table, key and the limit), and a board with every one at
    its maximum builds."""
    data = tomllib.loads(DEFAULT_BOARD.read_text())
    tables = {
        "interrupt_controller": data["interrupt_controller"],
        "iommu": data["iommu"],
        **{f"devices.{name}": table for name, table in data["devices"].items()},
    }
    unbounded = []
    for table in tables.values():
        for key, option in DEVICE_TYPES[table["type"]].OPTIONS.items():
            if option.type is int and option.maximum is None:
                unbounded.append(f"{table['type']}.{key}")
            elif option.type is int:
                table[key] = option.maximum
    assert unbounded == ["ns16550a.clock_hz"]  # a rate, not a size
    tables["devices.nvme0"]["size"] = 0x4000  # the doorbells of 64 I/O queue pairs at the widest stride
    system = parse_board(data, "max.toml").build()
    assert system.iommu.fault_queue.entries == 1 << 20 and system.iommu.iotlb.capacity == 1 << 20
    data["devices"]["net0"]["rx_backlog"] += 1
    with pytest.raises(BoardError, match=r"max.toml: \[devices.net0\] rx_backlog: must be at most 65536, not 65537"):
        parse_board(data, "max.toml")


def test_option_overrides_are_checked(tmp_path):
    board = load_board(write(tmp_path, MINI))
    with pytest.raises(BoardError) as info:
        board.build(options={"uart9": {"backend": "memory"}})
    assert str(info.value) == (
        f"{tmp_path / 'mini.toml'}: option override for unknown device 'uart9' (devices: dma0, iommu, plic, uart0)"
    )
    with pytest.raises(BoardError, match=r"\[devices.uart0\] backend: must be one of"):
        board.build(options={"uart0": {"backend": "pty"}})
    with pytest.raises(BoardError, match=r"\[devices.uart0\] speed: unknown option for ns16550a"):
        board.build(options={"uart0": {"speed": 9600}})
    with pytest.raises(
        BoardError,
        match=r"\[devices.uart0\]: option override must be a dict of option names to "
        r"values, not str",
    ):
        board.build(options={"uart0": "memory"})
    s = board.with_options({"iommu": {"mode": "bare"}}).build()
    assert s.iommu.mode.label == "Bare"
    assert board.iommu.options["mode"] == "off"  # the original board is unchanged


def test_uart_console_backend_is_the_default(tmp_path):
    s = load_board(write(tmp_path, edit('backend = "memory"\n', ""))).build()
    uart = s.device("uart0")
    assert isinstance(uart, Uart) and uart.backend.kind == "console"
    uart.mmio_write(0x10, 1, 0)
    assert s.issues()[0].kind is IssueKind.UNKNOWN_OFFSET


def test_boards_by_name(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no boards/ here: the name finds hwsim's own
    assert load_board("virt").name == "virt"
    with pytest.raises(BoardError, match=r"hwsim has no board of that name \(its boards: .*virt"):
        load_board("nosuch")
