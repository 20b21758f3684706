"""The funding settlements of one perpetual market, newest kept (issue 18:
``GET /fapi/v1/fundingRate``).

Each ``FundingDue`` the market settles is one ``Settlement``: its funding time, the
rate (``FUNDING_ONE`` units) and the mark (ticks) every position paid or received at.
At most ``settlements_max`` are kept (``[limits] history_fundings_max``, 1,000 by
default: a year of 8-hour fundings); past it the oldest goes. A view, not money: the
payments themselves are the positions' (``desk.PerpDesk._fund``). The market's
snapshot carries it and replay re-settles the same ones. Pure: no clock, no I/O.
"""
from __future__ import annotations

from collections import deque
from typing import NamedTuple


class Settlement(NamedTuple):
    ts_ns: int          # the funding time
    rate: int           # FUNDING_ONE units: > 0, longs paid shorts
    mark: int           # ticks


class FundingHistory:
    """A market's last ``settlements_max`` settlements, oldest first, in time order."""

    def __init__(self, settlements_max: int):
        if settlements_max < 1:
            raise ValueError("settlements_max must be at least 1")
        self.settlements: deque[Settlement] = deque(maxlen=settlements_max)

    def record(self, ts_ns: int, rate: int, mark: int) -> None:
        """A settlement at ``ts_ns``; funding times only go forward (a broken invariant otherwise)."""
        assert not self.settlements or ts_ns > self.settlements[-1].ts_ns, "funding times go forward"
        self.settlements.append(Settlement(ts_ns, rate, mark))

    def window(self, start_ns: int | None = None, end_ns: int | None = None, limit: int = 100) -> list[Settlement]:
        """The settlements from ``start_ns`` to ``end_ns`` (both inclusive), oldest first: the first
        ``limit`` from ``start_ns`` if it is given, else the newest ``limit``."""
        chosen = [s for s in self.settlements if (start_ns is None or s.ts_ns >= start_ns)
                  and (end_ns is None or s.ts_ns <= end_ns)]
        if limit <= 0:
            return []
        return chosen[:limit] if start_ns is not None else chosen[-limit:]

    def state(self) -> list[list[int]]:
        return [list(s) for s in self.settlements]

    def restore(self, state: list) -> None:
        self.settlements.clear()
        self.settlements.extend(Settlement(*s) for s in state)
