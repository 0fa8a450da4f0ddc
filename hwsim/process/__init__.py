"""Multi-module processes: position-independent wasm modules sharing memory 0, linked at load time.

::

    proc = hwsim.process.Process(search_path=["build"])
    proc.load("build/main.wasm")          # and the libraries its dylink.0 NEEDED lists name
    proc.call("main_run", 10)
    addr = proc.mmap(8192)                # the page allocator modules reach through hwsim:process

See docs/processes.md.
"""

from ._allocator import PROT_EXEC, PROT_NONE, PROT_READ, PROT_WRITE, PageAllocator
from ._build import BuildError, build_module
from ._errors import (
    DuplicateSymbolError,
    LibraryNotFoundError,
    LoadError,
    MemoryRequestError,
    OutOfMemoryError,
    ProcessError,
    UndefinedSymbolError,
)
from ._process import LoadedModule, Process

__all__ = [
    "BuildError",
    "DuplicateSymbolError",
    "LibraryNotFoundError",
    "LoadError",
    "LoadedModule",
    "MemoryRequestError",
    "OutOfMemoryError",
    "PROT_EXEC",
    "PROT_NONE",
    "PROT_READ",
    "PROT_WRITE",
    "PageAllocator",
    "Process",
    "ProcessError",
    "UndefinedSymbolError",
    "build_module",
]
