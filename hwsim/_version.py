"""The hwsim version (one place; read by packaging and the CLI)."""

__version__ = "0.1.0"
