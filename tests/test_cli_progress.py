"""The campaigns' progress line: a tqdm bar on a terminal, plain lines at each tenth on a pipe."""

from __future__ import annotations

import io
import sys

from hwsim.cli._progress import Progress, per_worker


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_pipe_a_line_at_each_tenth_with_rate_and_eta(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    bar = Progress(100, "seeds", label="fuzz")
    for done in range(1, 101):
        bar.update(done, f"{done} calls")
    bar.close()
    lines = err.getvalue().splitlines()
    assert len(lines) == 10
    assert lines[0].startswith("fuzz: 10/100 seeds, ") and "/s, ETA " in lines[0] and lines[0].endswith(": 10 calls")
    assert lines[-1].startswith("fuzz: 100/100 seeds, ") and "ETA" not in lines[-1]


def test_jumps_by_several_items_still_report_and_an_unknown_total_reports_every_n(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    bar = Progress(None, "seeds", every=5)
    for done in (3, 6, 7, 12):
        bar.update(done)
    assert [line.split(",")[0] for line in err.getvalue().splitlines()] == ["6 seeds", "12 seeds"]


def test_quiet_prints_nothing_and_a_terminal_gets_a_tqdm_bar(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    bar = Progress(10, "runs", quiet=True)
    bar.update(10, "done")
    bar.close()
    assert err.getvalue() == ""
    tty = _Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    bar = Progress(10, "runs", label="explore")
    bar.update(4, "chunks 2/5")
    bar.close()
    out = tty.getvalue()
    assert "explore:" in out and "4/10" in out and "chunks 2/5" in out and " runs/s" in out


def test_per_worker_names_each_worker_in_order():
    assert per_worker({"w1 on h": 3, "w0 on h": 5}, "runs") == "w0 on h: 5 runs, w1 on h: 3 runs"
