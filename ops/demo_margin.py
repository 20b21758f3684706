"""Margin demo traffic for ``exchange up``: a lender and leveraged traders.

- A lender supplies USDT and BTC to the lending pools;
- margin traders (user level L3, 10x tier: borrow up to 3x equity) send small
  IOC margin orders that borrow what they lack and repay what they acquire,
  half of them on isolated BTC-USDT books;
- one "gambler" (level ``pro``: the seed's 10x) keeps a 10x long open, so a
  1% fall of the index takes it to the liquidation line and the liquidator
  shows its work; it re-opens after each liquidation.
The summary line shows the pools' utilization, liquidations and the
insurance fund.
"""
from __future__ import annotations

import random
import time

from actors.client.exchange_client import ExchangeClient
from exchange.messages.records import PlaceMarginOrder
from ops.margin_setup import lender, margin_trader
from exchange.matching.orders import OrderType, Side, TimeInForce

LENDER = 4_000_001
TRADERS = list(range(5_000_001, 5_000_009))
GAMBLER = 5_100_001
MARKET = "BTC-USDT"
USDT = 10**6


class MarginDemo:
    def __init__(self, client: ExchangeClient, rng: random.Random):
        self.client = client
        self.rng = rng
        self.enabled = MARKET in client.config.margin.markets and client.handles.lending is not None

    def fund(self) -> None:
        if not self.enabled:
            return
        ts = time.time_ns()
        commands = lender("demo", LENDER, ts, {"USDT": 5 * 10**6 * USDT, "BTC": 100 * 10**8})
        for n, account in enumerate(TRADERS + [GAMBLER]):
            level = "pro" if account == GAMBLER else "L3"
            book = MARKET if n % 2 and account != GAMBLER else ""
            commands += margin_trader("demo", account, ts, 10_000 * USDT, level, "10x", book)
        self.client.execute(commands)

    def orders(self, index_prices: dict[str, int]) -> list:
        """This round's margin orders (IOC at the index +/- 0.5%: they take the makers' quotes)."""
        spec = self.client.config.markets[MARKET]
        index = index_prices.get(spec.base.name)
        if not self.enabled or not index:
            return []
        ts, rng, out = time.time_ns(), self.rng, []
        for n, account in enumerate(TRADERS):
            if rng.random() < 0.3:
                side = rng.choice((Side.BUY, Side.SELL))
                edge = index * (1_005 if side == Side.BUY else 995) // 1_000 // spec.tick_minor * spec.tick_minor
                qty = rng.randint(1, 5) * spec.min_lots * spec.lot_minor * 10
                out.append(self._order(account, side, edge, qty, isolated=bool(n % 2), ts=ts))
        book = self.client.margin_book(GAMBLER)
        if book is not None and not book["liquidating"] and not any(book["debt"].values()):
            price = index * 1_005 // 1_000 // spec.tick_minor * spec.tick_minor
            lots = 9 * book["available"]["USDT"] * 10**spec.base.scale // price // spec.lot_minor   # 10x long
            if lots >= spec.min_lots:
                out.append(self._order(GAMBLER, Side.BUY, price, lots * spec.lot_minor, isolated=False, ts=ts))
        return out

    def _order(self, account: int, side: Side, price: int, quantity: int, isolated: bool, ts: int):
        return PlaceMarginOrder(self.client.next_request_id(), ts, account, MARKET, int(side), int(OrderType.LIMIT),
                                price, quantity, int(TimeInForce.IOC), isolated=isolated, auto_borrow=True,
                                auto_repay=True)

    def summary(self) -> dict:
        if not self.enabled:
            return {}
        pools = self.client.lending_pools()
        return {"usdt_utilization_pct": round(pools["USDT"]["utilization_ppm"] / 10_000, 2),
                "liquidations": len(self.client.liquidations(10_000)),
                "insurance_fund_usdt": self.client.insurance_fund()["balance"]["USDT"] // USDT}
