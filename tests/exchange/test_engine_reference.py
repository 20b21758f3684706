"""Differential test: the engine against a brute-force reference matcher.

The reference below keeps each market's open orders in a plain list and finds
the best maker by sorting on every step: obviously correct price-time priority.
It models GTC and IOC limit orders, cancels, amends (reduce in place keeps
priority, anything else re-enters as a taker with expire-taker STP) and the
three STP modes. Seeded random streams drive both; fills (maker, price,
quantity), STP expiries, taker outcomes, refusals and the resting books must
match after every command. A failure prints its seed; rerun one seed with
``EXCHANGE_REFERENCE_SEEDS=<seed>``.
"""
from __future__ import annotations

import os
import random

import pytest

from exchange.engine import Engine
from exchange.messages.records import Fill, OrderAccepted, OrderAmended, OrderBooked, OrderClosed, OrderRejected
from exchange.core.reasons import CloseReason, Reason
from tests.exchange.support import (BTC_USDT, BUY, CONFIG, ETH_USDT, EXPIRE_BOTH, EXPIRE_MAKER, EXPIRE_TAKER, GTC,
                                    IOC, SELL, Harness)

ACCOUNTS = list(range(21, 27))
MARKETS = [BTC_USDT, ETH_USDT]
MID_TICKS = {BTC_USDT: 5_000_000, ETH_USDT: 300_000}
FUNDS = {"USDT": 10**15, "BTC": 10**14, "ETH": 10**14}
STREAM_LENGTH = 300


class ReferenceMarket:
    """Open orders as dicts in a list; nothing clever."""

    def __init__(self):
        self.orders: list[dict] = []
        self.arrivals = 0

    def _arrive(self, order: dict) -> None:
        self.arrivals += 1
        order["arrival"] = self.arrivals
        self.orders.append(order)

    def _best_maker(self, side: int, limit: int) -> dict | None:
        if side == BUY:
            crossing = [o for o in self.orders if o["side"] == SELL and o["price"] <= limit]
            return min(crossing, key=lambda o: (o["price"], o["arrival"]), default=None)
        crossing = [o for o in self.orders if o["side"] == BUY and o["price"] >= limit]
        return min(crossing, key=lambda o: (-o["price"], o["arrival"]), default=None)

    def execute(self, order: dict, tif: int, stp: int) -> dict:
        """Match ``order`` as a taker; rest the remainder if GTC. Return what happened."""
        fills, expired_makers, outcome = [], [], None
        while order["qty"] > 0:
            maker = self._best_maker(order["side"], order["price"])
            if maker is None:
                break
            if maker["account"] == order["account"]:
                if stp == EXPIRE_TAKER:
                    outcome = "expired_stp"
                    break
                self.orders.remove(maker)
                expired_makers.append((maker["id"], maker["qty"]))
                if stp == EXPIRE_BOTH:
                    outcome = "expired_stp"
                    break
                continue
            quantity = min(order["qty"], maker["qty"])
            fills.append((maker["id"], maker["price"], quantity))
            maker["qty"] -= quantity
            order["qty"] -= quantity
            if maker["qty"] == 0:
                self.orders.remove(maker)
        if outcome is None:
            if order["qty"] == 0:
                outcome = "filled"
            elif tif == IOC:
                outcome = "expired_ioc"
            else:
                outcome = "rested"
                self._arrive(order)
        return {"fills": fills, "expired_makers": expired_makers, "outcome": outcome,
                "remaining": order["qty"]}

    def find(self, order_id: int) -> dict | None:
        return next((o for o in self.orders if o["id"] == order_id), None)

    def cancel(self, order_id: int, account: int) -> Reason | int:
        order = self.find(order_id)
        if order is None:
            return Reason.ORDER_NOT_FOUND
        if order["account"] != account:
            return Reason.NOT_OWNER
        self.orders.remove(order)
        return order["qty"]

    def amend(self, order_id: int, price: int, total: int) -> Reason | dict:
        order = self.find(order_id)
        if order is None:
            return Reason.ORDER_NOT_FOUND
        filled = order["total"] - order["qty"]
        new_price, new_total = price or order["price"], total or order["total"]
        if (new_price, new_total) == (order["price"], order["total"]):
            return Reason.AMEND_NO_CHANGE
        if new_total <= filled:
            return Reason.AMEND_BELOW_FILLED
        if new_price == order["price"] and new_total < order["total"]:
            order["qty"], order["total"] = new_total - filled, new_total
            return {"kept": True, "fills": [], "expired_makers": [], "outcome": "amended", "remaining": order["qty"]}
        self.orders.remove(order)
        moved = dict(order, price=new_price, qty=new_total - filled, total=new_total)
        result = self.execute(moved, GTC, EXPIRE_TAKER)
        result["kept"] = False
        return result

    def book(self) -> list[tuple]:
        bids = sorted((o for o in self.orders if o["side"] == BUY), key=lambda o: (-o["price"], o["arrival"]))
        asks = sorted((o for o in self.orders if o["side"] == SELL), key=lambda o: (o["price"], o["arrival"]))
        return [(o["id"], o["side"], o["price"], o["qty"]) for o in bids + asks]


# ---- reading the engine's answer in the reference's terms ------------------------------

def engine_result(events: list, market: str, own_id: int) -> dict:
    spec = CONFIG.markets[market]
    fills = [(e.maker_order_id, e.price // spec.tick_minor, e.quantity // spec.lot_minor)
             for e in events if type(e) is Fill]
    expired = [(e.order_id, e.remaining // spec.lot_minor) for e in events
               if type(e) is OrderClosed and e.reason == CloseReason.EXPIRED_STP and e.order_id != own_id]
    own = [e for e in events if type(e) in (OrderClosed, OrderBooked) and e.order_id == own_id]
    amended = [e for e in events if type(e) is OrderAmended]
    if own and type(own[-1]) is OrderBooked:
        outcome, remaining = "rested", own[-1].remaining // spec.lot_minor
    elif own:
        outcome = {CloseReason.FILLED: "filled", CloseReason.EXPIRED_IOC: "expired_ioc",
                   CloseReason.EXPIRED_STP: "expired_stp"}[CloseReason(own[-1].reason)]
        remaining = own[-1].remaining // spec.lot_minor
    else:
        assert len(amended) == 1 and amended[0].kept_priority, events
        outcome, remaining = "amended", amended[0].remaining // spec.lot_minor
    result = {"fills": fills, "expired_makers": expired, "outcome": outcome, "remaining": remaining}
    if amended:
        result["kept"] = amended[0].kept_priority
    return result


def engine_book(engine: Engine, market: str) -> list[tuple]:
    return [(k[0], k[2], k[3], k[4]) for k in engine.markets[market].book.canonical()]


def rejection(events: list) -> Reason | None:
    if len(events) == 1 and type(events[0]) is OrderRejected:
        return Reason(events[0].reason)
    return None


def run_seed(seed: int) -> int:
    rng = random.Random(seed)
    harness = Harness(Engine(CONFIG))
    for account in ACCOUNTS:
        harness.open(account)
        for asset, minor in FUNDS.items():
            harness.deposit(account, asset, minor)
    engine = harness.engine
    reference = {m: ReferenceMarket() for m in MARKETS}
    owners: dict[int, tuple[int, str]] = {}
    fills_seen = 0
    for step in range(STREAM_LENGTH):
        market = rng.choice(MARKETS)
        spec, ref = CONFIG.markets[market], reference[market]
        live = [o["id"] for o in ref.orders]
        roll = rng.random()
        where = f"seed={seed} step={step}"
        if roll < 0.62 or not live:
            account, side = rng.choice(ACCOUNTS), rng.choice([BUY, SELL])
            toward = rng.randint(-8, 4)
            ticks = MID_TICKS[market] + (toward if side == BUY else -toward)
            lots = rng.randint(1, 20)
            tif = IOC if rng.random() < 0.3 else GTC
            stp = rng.choice([EXPIRE_TAKER, EXPIRE_MAKER, EXPIRE_BOTH])
            events = harness.place(account, side, ticks * spec.tick_minor, lots * spec.lot_minor, market=market,
                                   tif=tif, stp=stp)
            [accepted] = [e for e in events if type(e) is OrderAccepted]
            order_id = accepted.order_id
            owners[order_id] = (account, market)
            expected = ref.execute({"id": order_id, "account": account, "side": side, "price": ticks,
                                    "qty": lots, "total": lots}, tif, stp)
            assert engine_result(events, market, order_id) == expected, where
        elif roll < 0.80:
            order_id = rng.choice(live) if rng.random() < 0.9 else 10**9 + step
            owner = owners.get(order_id, (rng.choice(ACCOUNTS), market))[0]
            account = owner if rng.random() < 0.85 else rng.choice(ACCOUNTS)
            expected = ref.cancel(order_id, account)
            events = harness.cancel(account, order_id, market=market)
            if isinstance(expected, Reason):
                assert rejection(events) == expected, where
            else:
                assert [(type(e), e.reason, e.remaining // spec.lot_minor) for e in events] == \
                    [(OrderClosed, CloseReason.CANCELLED, expected)], where
        else:
            order_id = rng.choice(live)
            account = owners[order_id][0]
            current = ref.find(order_id)
            price = 0 if rng.random() < 0.5 else current["price"] + rng.randint(-4, 4)
            total = 0 if rng.random() < 0.3 else rng.randint(1, 25)
            expected = ref.amend(order_id, price, total)
            events = harness.amend(account, order_id, price=price * spec.tick_minor,
                                   quantity=total * spec.lot_minor, market=market)
            if isinstance(expected, Reason):
                assert rejection(events) == expected, where
            else:
                assert engine_result(events, market, order_id) == expected, where
        fills_seen += sum(type(e) is Fill for e in events)
        for name in MARKETS:
            assert engine_book(engine, name) == reference[name].book(), f"{where} book {name}"
        engine.check_invariants()
    return fills_seen


SEEDS = [int(s) for s in os.environ.get("EXCHANGE_REFERENCE_SEEDS", "").split(",") if s] or list(range(40))


@pytest.mark.parametrize("seed", SEEDS)
def test_engine_with_seeded_stream_matches_reference_matcher(seed):
    print(f"reference seed={seed}")
    fills = run_seed(seed)
    assert fills > 0, f"seed={seed} produced no fills: the stream does not exercise matching"
