"""Garbage-collector policy for actor processes (and the benchmark).

CPython's automatic full collections scan every tracked object; with hundreds
of thousands of resting orders and Ray's own object graph that costs tens of
milliseconds per pause and, measured in an in-process pipeline here, about
half of all CPU (19.6k -> 37k orders/s when tuned). The engine creates no
reference cycles on its hot path (refcounting frees its garbage), so:

- young generations keep CPython's thresholds (700, 10): short-lived cycles
  made by asyncio and Ray are still found quickly and cheaply;
- automatic full collections are switched off (threshold 2 = 10**9);
- ``maybe_collect`` runs a full collection every ``interval_s`` from the
  actor's own loop and then freezes the survivors (``gc.freeze``), so each
  later full pass only scans what was created since the previous one.

Trade-off, accepted and written down: a reference cycle among frozen objects
is never reclaimed. Nothing long-lived in this code base forms cycles.
"""
from __future__ import annotations

import gc
import time


class GcPolicy:
    def __init__(self, interval_s: float = 10.0):
        self.interval_s = interval_s
        self.last = time.monotonic()
        self.collections = 0
        self.pause_s_max = 0.0

    def install(self) -> "GcPolicy":
        gc.collect()
        gc.freeze()
        gc.set_threshold(700, 10, 1_000_000_000)
        return self

    def maybe_collect(self) -> None:
        now = time.monotonic()
        if now - self.last < self.interval_s:
            return
        gc.collect()
        gc.freeze()
        self.last = time.monotonic()
        self.collections += 1
        self.pause_s_max = max(self.pause_s_max, self.last - now)
