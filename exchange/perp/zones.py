"""Which positions a new mark can move to another margin zone (rulebook 4.3.2), without
re-valuing every position at every mark.

A position's zone (0 healthy, 1 under the warning line, 2 at or under
maintenance: ``PerpDesk._zones``) is a step function of its market's mark:
equity rises by ``lots x k`` a tick while a requirement rises by at most its
top rate of that, so a long's zone only falls as the mark rises and a
short's only rises. Two prices fix it while the position and what stands
behind it stay as they are: its liquidation price and its warning price
(``exchange.perp.prices``, the ticks where the rounded checks turn). So the
index keeps, per market, the band of marks in which each position keeps its
zone, in two heaps (the band's top for a rising mark, its bottom for a
falling one); a mark fires only the positions whose band it left.

What changes a position or its collateral (a fill, funding, a transfer, a
take-over) makes the account ``touch``-ed: re-valued at its market's next
mark, and its prices found again. A cross wallet holding positions in more
than one market of its settlement asset depends on every mark; it is
re-valued at each (``always``). The index is derived state: not snapshotted,
rebuilt by re-valuing every account at the first mark after a restore
(``touch_all``). ``PerpDesk.check_invariants`` checks that every account not
touched since has the prices its position gives now.
"""
from __future__ import annotations

import heapq

INF = 1 << 62


def band(zone: int, long: bool, liquidation: int | None, warning: int | None) -> tuple[int, int]:
    """The marks ``[low, high)`` (ticks) in which a position in ``zone`` stays there, given its
    liquidation and warning prices (None: no positive price reaches that line)."""
    if long:                             # zone 2 at and under the liquidation price
        e2, e1 = liquidation or 0, warning or 0
        return ((-INF, e2 + 1), (e2 + 1, e1 + 1), (e1 + 1, INF))[2 - zone]
    e2, e1 = liquidation or INF, warning or INF      # a short: zone 2 at and over it
    return ((-INF, e1), (e1, e2), (e2, INF))[zone]


class ZoneIndex:
    def __init__(self, markets):
        self.touched: dict[str, set[int]] = {m: set() for m in markets}     # re-value at the next mark
        self.always: dict[str, set[int]] = {m: set() for m in markets}      # cross wallets in several markets
        self.prices: dict[tuple[str, int], tuple] = {}     # (market, account) -> (long, liquidation, warning)
        self.version: dict[tuple[str, int], int] = {}
        self.rising: dict[str, list] = {m: [] for m in markets}      # (band top, version, account): min-heap
        self.falling: dict[str, list] = {m: [] for m in markets}     # (-band bottom, version, account)

    def touch(self, account_id: int) -> None:
        """The account's positions or collateral changed."""
        for touched in self.touched.values():
            touched.add(account_id)

    def touch_market(self, market: str, accounts) -> None:
        """The market's rates changed: re-value every account at its next mark."""
        self.touched[market].update(accounts)

    def touch_all(self, accounts) -> None:
        for touched in self.touched.values():
            touched.update(accounts)

    def due(self, market: str, mark: int) -> set[int]:
        """The accounts to re-value at ``mark``: touched, in several markets, or whose band it left."""
        out = self.touched[market] | self.always[market]
        self.touched[market] = set()
        for heap, fired in ((self.rising[market], lambda top: top <= mark),
                            (self.falling[market], lambda top: -top > mark)):
            while heap and fired(heap[0][0]):
                _, version, account = heapq.heappop(heap)
                if self.version.get((market, account)) == version:
                    out.add(account)
        return out

    def place(self, market: str, account_id: int, zone: int, prices: tuple | None, every_mark: bool = False) -> None:
        """After re-valuing: the account's position is in ``zone`` with ``prices`` (long,
        liquidation, warning); None: nothing to index (no position, or ``every_mark``: a cross
        wallet in several markets, re-valued at each)."""
        key = (market, account_id)
        version = self.version.get(key, 0) + 1
        self.version[key] = version
        if every_mark:
            self.always[market].add(account_id)
        else:
            self.always[market].discard(account_id)
        if prices is None:
            self.prices.pop(key, None)
            return
        self.prices[key] = prices
        low, high = band(zone, *prices)
        if high < INF:
            heapq.heappush(self.rising[market], (high, version, account_id))
        if low > -INF:
            heapq.heappush(self.falling[market], (-low, version, account_id))
        if len(self.rising[market]) + len(self.falling[market]) > 4 * len(self.prices) + 1_024:
            self._compact(market)

    def _compact(self, market: str) -> None:
        """Drop the heaps' entries of bands left behind."""
        for heaps in (self.rising, self.falling):
            heaps[market] = [e for e in heaps[market] if self.version.get((market, e[2])) == e[1]]
            heapq.heapify(heaps[market])
