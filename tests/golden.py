"""Golden transcripts under ``tests/data/teach/``: compare, or rewrite them with ``HWSIM_REGEN_GOLDEN=1``."""

from __future__ import annotations

import os
from pathlib import Path

GOLDEN_DIR = Path(__file__).parent / "data" / "teach"


def check_golden(name: str, text: str) -> None:
    path = GOLDEN_DIR / name
    if os.environ.get("HWSIM_REGEN_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return
    assert path.exists(), f"golden file {path} is missing (create it with HWSIM_REGEN_GOLDEN=1)"
    expected = path.read_text()
    assert text == expected, f"output differs from {path} (if the change is intended: HWSIM_REGEN_GOLDEN=1)"
