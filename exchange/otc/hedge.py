"""The desk's inventory risk: per-asset limits, and the hedge on the spot book (seed 000: 库存风险).

``[otc.inventory.<ASSET>]`` gives a ``min`` and a ``max`` for the desk account's
available balance of an asset. When trades take it past one, the desk trades the
difference back on the spot book of the pair it quotes with that asset as base,
**from its own account, as an ordinary order** (``OtcActor`` places it through the
shard's client door, like any client's): a limit IOC sell of the excess over
``max`` at no less than the index less ``[otc] hedge_slippage_bps`` (rounded up to
the tick), or a limit IOC buy of the shortfall under ``min`` at no more than the
index plus it (rounded down), in whole lots and only what the desk's free quote
balance can pay. What the book does not fill is left; the next look, at most every
``hedge_interval_s`` per asset, hedges what is still past the limit. One hedge per
asset is on its way at a time (``working``); each is recorded (``orders``) with what
it filled.
"""
from __future__ import annotations

from exchange.matching.orders import BUY, SELL
from exchange.otc.states import RULE


class Hedger:
    def __init__(self, rules) -> None:
        self.rules = rules
        self.number = 0
        self.working: dict[str, int] = {}        # asset -> the hedge on its way
        self.last_ns: dict[str, int] = {}        # asset -> when its last hedge was placed
        self.orders: list[list] = []             # [number, asset, market, side, quantity, price, filled, ts]

    def wanted(self, desk, ts: int) -> tuple | None:
        """(asset, (low, high), (market, side, quantity, price)) of the hedge due now, or None."""
        for asset, (low, high) in sorted((self.rules.inventory_limits or {}).items()):
            if asset in self.working or ts < self.last_ns.get(asset, 0) + self.rules.hedge_interval_ns:
                continue
            order = self._order(desk, asset, low, high)
            if order is not None:
                return asset, (low, high), order
        return None

    def next(self, desk, ts: int) -> list | None:
        """The next hedge order ``[number, market, side, quantity, price]`` (recorded), or None."""
        wanted = self.wanted(desk, ts)
        if wanted is not None:
            asset, (low, high), (market, side, quantity, price) = wanted
            self.number += 1
            self.working[asset] = self.number
            self.last_ns[asset] = ts
            self.orders.append([self.number, asset, market, side, quantity, price, -1, ts])
            desk.audit.append(ts, "desk", "hedge", asset, str(desk.free(asset)), f"{'buy' if side == BUY else 'sell'} "
                              f"{quantity} at {price}", f"inventory outside [{low}, {high}]", RULE)
            return [self.number, market, side, quantity, price]
        return None

    def _order(self, desk, asset: str, low: int, high: int) -> tuple | None:
        pair = next(p for p in self.rules.pairs.values() if p.spec.base.name == asset)
        spec, last = pair.spec, desk.history[pair.spec.name].last
        if last is None:
            return None
        level, slip = desk.free(asset), self.rules.hedge_slippage_bps
        if level > high:
            lots = (level - high) // spec.lot_minor
            ticks = -(-last * (10_000 - slip) // 10_000)
            side = SELL
        elif level < low:
            ticks = last * (10_000 + slip) // 10_000
            lots = -(-(low - level) // spec.lot_minor)
            lots = min(lots, desk.free(spec.quote.name) // max(1, spec.notional(ticks, 1)))
            side = BUY
        else:
            return None
        if lots <= 0 or ticks <= 0:
            return None
        return spec.name, side, lots * spec.lot_minor, ticks * spec.tick_minor

    def done(self, desk, number: int, filled: int, ts: int) -> None:
        for order in self.orders:
            if order[0] == number:
                order[6] = filled
                self.working.pop(order[1], None)
                desk.audit.append(ts, "desk", "hedged", order[1], "", str(filled), f"hedge {number}", RULE)
                return

    def to_plain(self) -> dict:
        return {"number": self.number, "working": sorted(self.working.items()),
                "last_ns": sorted(self.last_ns.items()), "orders": self.orders}

    def restore(self, state: dict) -> None:
        self.number = state["number"]
        self.working = {a: n for a, n in state["working"]}
        self.last_ns = {a: n for a, n in state["last_ns"]}
        self.orders = [list(o) for o in state["orders"]]

    def canonical(self) -> tuple:
        return (self.number, tuple(sorted(self.working.items())), tuple(sorted(self.last_ns.items())),
                tuple(map(tuple, self.orders)))

