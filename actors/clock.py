"""The actors' wall clock and timers: the one place an actor reads the time it
stamps, or waits for it to pass.

``now_ns()`` is ``time.time_ns()`` and ``sleep(seconds)`` is ``asyncio.sleep``
in a deployment. The seeded simulator (``ops/sim.py``) replaces both with its
own (``use_clock``, ``use_sleep``): a simulated clock, and timers that are
events its scheduler fires, so a run replays to the same stamps, the same
order of wake-ups and the same state hashes, with no real pause. ``every``
is an actor's periodic loop on that timer.
"""
from __future__ import annotations

import asyncio
import time

CLOCK = time.time_ns
SLEEP = asyncio.sleep


def now_ns() -> int:
    """Nanoseconds since the epoch, from the configured clock."""
    return CLOCK()


def use_clock(clock) -> object:
    """Install ``clock`` (a function returning nanoseconds); return the previous one."""
    global CLOCK
    previous, CLOCK = CLOCK, clock
    return previous


async def sleep(seconds: float) -> None:
    """Wait ``seconds`` on the configured timer (read at the moment of use)."""
    await SLEEP(seconds)


async def every(seconds: float, step, log, what: str) -> None:
    """Run ``step()`` (a coroutine function) forever, ``seconds`` apart; a failure is logged
    and the next turn tries again (a peer restarting)."""
    while True:
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.info("%s: %s", what, exc)
        await sleep(seconds)


def use_sleep(sleep_function) -> object:
    """Install ``sleep_function`` (an awaitable taking seconds); return the previous one."""
    global SLEEP
    previous, SLEEP = SLEEP, sleep_function
    return previous
