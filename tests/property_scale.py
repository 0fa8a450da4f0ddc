"""How many examples the property tests run: their CI number times ``HWSIM_PROPERTY_SCALE`` (default 1).

CI runs the numbers written in the tests; a longer run, e.g.
``HWSIM_PROPERTY_SCALE=20 python -m pytest tests/test_isolation.py tests/test_runtime_segments.py``,
runs twenty times as many (docs/reliability.md gives the last such run).
"""

from __future__ import annotations

import os

from hwsim.errors import ConfigError


def examples(n: int) -> int:
    raw = os.environ.get("HWSIM_PROPERTY_SCALE", "1")
    try:
        scale = float(raw)
    except ValueError:
        raise ConfigError(f"HWSIM_PROPERTY_SCALE must be a number, not {raw!r}") from None
    return max(1, round(n * scale))
