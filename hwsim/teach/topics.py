"""The exercise topics of each quiz, as data: the command line lists them in its help and choices
without importing the quiz generators (and the models they use)."""

MMU = {
    "page": "4 KiB pages",
    "superpage": "2 MiB and 1 GiB superpages",
    "misaligned": "misaligned superpages",
    "invalid": "invalid PTEs (V=0), at any level",
    "no-leaf": "a pointer PTE at the last level",
    "permission": "R, W and X permissions",
    "w-without-r": "the reserved encoding W=1 with R=0",
    "user": "U-mode and S-mode pages, SUM",
    "mxr": "MXR: loads from execute-only pages",
    "accessed-dirty": "A and D bits: Svade faults and hardware updates",
    "canonical": "canonical (sign-extended) virtual addresses",
    "reserved": "reserved PTE bits: 63:54, and D/A/U in a non-leaf PTE",
    "access-fault": "page tables outside RAM: access faults",
}

TWOSTAGE = {
    "translate": "Sv39 over Sv39x4 through 4 KiB pages: every VS PTE address translated by the G-stage",
    "superpages": "VS-stage and G-stage superpages: fewer reads",
    "vs-fault": "page faults in the VS-stage (invalid PTEs, permissions, U and SUM)",
    "g-fault-pte": "guest-page faults translating a VS-stage PTE's guest-physical address",
    "g-fault-final": "guest-page faults on the final guest-physical address",
    "ad-write": "VS-stage A/D updates as G-stage stores (write-protected guest page tables)",
    "gpa-width": "guest-physical addresses wider than Sv39x4's 41 bits",
    "bare": "vsatp or hgatp Bare: one stage only",
}

EXT = {
    "sv57": "Sv57: five levels, 256 TiB and 512 GiB superpages (teaching only)",
    "napot": "Svnapot: 64 KiB NAPOT pages, the N bit and its reserved encodings",
    "pbmt": "Svpbmt: memory types PMA/NC/IO in PBMT, and the reserved value 3",
}

TLB = {
    "lru": "hits, misses and LRU eviction",
    "asid": "two address spaces: ASID tags, global entries, switching without a flush",
    "sfence": "sfence.vma by address, by ASID, both, and all",
    "stale": "page-table changes without sfence.vma: stale entries",
}

IOMMU = {
    "translate": "translated DMA through 4 KiB IO pages, across page boundaries",
    "superpage": "a 2 MiB IO superpage",
    "stray": "stray DMA: IOVAs the device was never given",
    "crossing": "a request that runs into an unmapped page (all or nothing)",
    "permission": "device permissions: U-mode walks, read-only and execute-only pages",
    "accessed-dirty": "A and D bits: SADE=1 updates, SADE=0 faults",
    "directory": "the device directory: invalid or misconfigured entries, device IDs too wide",
    "bare": "Bare: the IOMMU off or passing addresses through",
    "not-ram": "DMA translated to a device window or to empty address space, not RAM",
}

REPLACE = {
    "faults": "how many page faults a policy takes on a reference string",
    "victim": "which page a fault evicts, at a given reference",
    "write-backs": "how many evicted pages are dirty and written back",
    "anomaly": "FIFO with one frame more: Belady's anomaly",
}

X86 = {
    "page": "4 KiB pages",
    "large-page": "2 MiB and 1 GiB pages (PS=1)",
    "not-present": "entries with P=0, at any level",
    "reserved": "reserved bits: above MAXPHYADDR, XD with NXE=0, PS in a PML4E, a large page's low bits",
    "user-supervisor": "U/S over every level: user-mode and supervisor-mode addresses",
    "read-write": "R/W over every level, CR0.WP",
    "execute-disable": "XD with EFER.NXE",
    "smep-smap": "SMEP, SMAP and EFLAGS.AC",
    "pku": "protection keys: PK in the entry, PKRU's AD and WD",
    "accessed-dirty": "the A and D bits the processor sets",
    "canonical": "canonical linear addresses (#GP)",
}

ARM = {
    "page": "pages at level 3",
    "block": "block descriptors at the levels the granule allows",
    "invalid": "invalid descriptors, 01 at level 3, blocks where the granule allows none",
    "ttbr": "TTBR0 or TTBR1 by the VA's top bits, T0SZ/T1SZ, VAs in neither range",
    "address-size": "table and output addresses above the PA size (TCR_EL1.IPS)",
    "access-flag": "AF=0: access flag faults, or the hardware sets it (TCR_EL1.HA)",
    "ap": "AP[2:1]: EL0 and EL1 read and write permissions",
    "execute-never": "UXN, PXN, writable at EL0 implies PXN, SCTLR_EL1.WXN",
    "table-attrs": "hierarchical attributes: APTable, UXNTable, PXNTable",
    "pan": "PSTATE.PAN: EL1 data accesses to EL0 pages",
    "contiguous": "the contiguous hint: a TLB hint that does not change the translation",
}
