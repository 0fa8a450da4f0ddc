"""The conformance report (docs/conformance.md): per-file counts, failures and skips grouped by cause."""

from __future__ import annotations

import datetime
import re
from collections import defaultdict

from .runner import FAILED, SKIPPED


def _cause(reason: str) -> str:
    """Group reasons that differ only in offsets, indices and values."""
    reason = re.sub(r"\(at offset 0x[0-9a-f]+[^)]*\)", "", reason)
    reason = re.sub(r"0x[0-9a-f]+", "N", reason)
    reason = re.sub(r"\b\d+\b", "N", reason)
    return reason.strip()


def markdown(run, *, command: str, engine: str) -> str:
    total = run.passed + run.failed + run.skipped
    share = 100.0 * run.passed / total if total else 0.0
    lines = [
        "# Conformance",
        "",
        f"Generated on {datetime.date.today().isoformat()} by `{command}` (engine: {engine}).",
        "",
        f"**{run.passed} passed, {run.failed} failed, {run.skipped} skipped** of {total} commands in "
        f"{len(run.files)} scripts: **{share:.2f}%** pass (a skipped command counts as not passed).",
        "",
        "Text-format `assert_malformed` modules are checked with `wasm-tools parse`, hwsim's text front end "
        "(hwsim's own decoder reads binary modules only); they are counted as passed with that note.",
        "",
    ]
    groups: dict[str, dict[str, list[str]]] = {FAILED: defaultdict(list), SKIPPED: defaultdict(list)}
    for f in run.files:
        for o in f.outcomes:
            if o.status in groups:
                groups[o.status][_cause(o.reason)].append(f"{f.name}:{o.line}")
    for status, title in ((FAILED, "Failures by cause"), (SKIPPED, "Skipped commands by cause")):
        lines += [f"## {title}", ""]
        if not groups[status]:
            lines += ["None.", ""]
            continue
        for cause, where in sorted(groups[status].items(), key=lambda kv: -len(kv[1])):
            shown = ", ".join(where[:12]) + (f", ... {len(where) - 12} more" if len(where) > 12 else "")
            lines += [f"- **{len(where)}** {cause}  ", f"  {shown}"]
        lines.append("")
    lines += ["## Per script", "", "| script | passed | failed | skipped |", "| --- | ---: | ---: | ---: |"]
    for f in run.files:
        lines.append(f"| {f.name} | {f.passed} | {f.failed} | {f.skipped} |")
    return "\n".join(lines) + "\n"
