"""Stand-ins for hwsim.fuzz.campaign.check_seed that misbehave on seed 3 (for tests/test_fuzz.py).

They live in a module of their own because campaign workers are spawned processes, which import what
they run by name.
"""

from __future__ import annotations

import os
import time


def fine(seed, out_dir, **_) -> dict:
    return {"seed": seed, "no_module": True}


def dies_on_3(seed, out_dir, **_) -> dict:
    if seed == 3:
        os._exit(7)  # as a segfault in native code would
    return fine(seed, out_dir)


def hangs_on_3(seed, out_dir, **_) -> dict:
    if seed == 3:
        time.sleep(3600)
    return fine(seed, out_dir)


def raises_on_3(seed, out_dir, **_) -> dict:
    if seed == 3:
        raise RuntimeError("a bug in the harness")
    return fine(seed, out_dir)


def dies_between_3_and_4(seed, out_dir, **_) -> dict:
    """Seed 3 completes; then the process dies before it starts seed 4 (as a crash in a finaliser of seed 3's
    objects would).  (From the review that found seeds were lost this way.)"""
    if seed == 3:
        import sys

        conn = sys._getframe(1).f_locals["conn"]
        real = conn.send

        def send(msg):
            if msg[0] == "start":
                os._exit(139)
            real(msg)

        conn.send = send
    return fine(seed, out_dir)


def dies_at_once(seed, out_dir, **_) -> dict:
    os._exit(1)
