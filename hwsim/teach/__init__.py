"""Teaching tools: generated exercises (MMU, IOMMU, TLB) with worked answers, and a live demo address space."""
