"""The progress of a long campaign (fuzz seeds, explored seeds, spec scripts) on stderr.

On a terminal: a ``tqdm`` bar with the count, rate and ETA, and the campaign's own status after it
(divergences so far, say).  On a pipe or a file: a plain line at each tenth of the way (or every
``every`` items when the total is not known), so logs stay readable.  ``quiet``: nothing.
"""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int | None, unit: str, *, quiet: bool = False, every: int = 500, label: str = ""):
        self.total, self.unit, self.label = total, unit, label
        self.quiet = quiet
        self.step = max(1, total // 10) if total else every
        self.done = 0
        self.start = time.monotonic()
        self.bar = None
        if not quiet and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit=f" {unit}", desc=label or None, file=sys.stderr, dynamic_ncols=True)

    def update(self, done: int, status: str = "") -> None:
        """``done`` items so far (not an increment: resumed chunks may arrive all at once)."""
        before, self.done = self.done, done
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.update(done - before)
            if status:
                self.bar.set_postfix_str(status, refresh=False)
            return
        if done // self.step == before // self.step and done != self.total:
            return
        seconds = time.monotonic() - self.start
        rate = done / seconds if seconds > 0 else 0.0
        of = f"/{self.total}" if self.total else ""
        eta = f", ETA {(self.total - done) / rate:.0f} s" if self.total and rate > 0 and done < self.total else ""
        lead = f"{self.label}: " if self.label else ""
        tail = f": {status}" if status else ""
        print(f"{lead}{done}{of} {self.unit}, {rate:.1f}/s{eta}{tail}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def per_worker(counts: dict[str, int], unit: str) -> str:
    """``"w0 on host: 12 seeds, w1 on host: 8 seeds"``: how the work spread over the workers."""
    return ", ".join(f"{worker or '?'}: {n} {unit}" for worker, n in sorted(counts.items()))
