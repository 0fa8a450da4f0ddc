"""Instruction-set backends: one package per ISA, each implementing :class:`hwsim.compiler.masm.MacroAssembler`."""
