"""The actors' wall clock: the one place an actor reads the time it stamps.

``now_ns()`` is ``time.time_ns()`` in a deployment. The seeded simulator
(``ops/sim.py``) replaces ``CLOCK`` with its own simulated clock, so a run
replays to the same stamps and the same state hashes.
"""
from __future__ import annotations

import time

CLOCK = time.time_ns


def now_ns() -> int:
    """Nanoseconds since the epoch, from the configured clock."""
    return CLOCK()


def use_clock(clock) -> object:
    """Install ``clock`` (a function returning nanoseconds); return the previous one."""
    global CLOCK
    previous, CLOCK = CLOCK, clock
    return previous
