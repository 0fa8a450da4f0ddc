"""RISC-V architecture facts shared by the machine, the MMU and the compiler.

``priv``: privilege levels, access types, exception causes, CSR bit layouts.
``asm``: an RV64 instruction encoder.  ``disasm``: capstone, configured once.
"""
