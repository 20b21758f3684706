"""Shared helpers for the exchange tests: units, a funded engine harness and
state snapshots used to prove that a rejection changes nothing.

Expected values in the tests are computed from the public rules (decimal
prices, the configured fee rates, ``fractions.Fraction``), never read back from
the implementation.
"""
from __future__ import annotations

import copy
import math
import tomllib
from fractions import Fraction
from typing import Callable, Iterable

from exchange.config import DEFAULT_CONFIG_PATH, ExchangeConfig, load_config, parse_config
from exchange.engine import Engine
from exchange.messages.records import (AmendOrder, CancelOrder, Deposit, Fill, OpenAccount, OrderAccepted,
                               OrderRejected, PlaceOrder, Withdraw)
from exchange.core.money import parse_decimal
from exchange.matching.orders import OrderType, Side, StpMode, TimeInForce
from exchange.core.reasons import Reason

CONFIG = load_config()
DEFAULT_RAW = tomllib.loads(DEFAULT_CONFIG_PATH.read_text())     # the default file as a plain document
BTC_USDT, ETH_USDT = "BTC-USDT", "ETH-USDT"
BUY, SELL = int(Side.BUY), int(Side.SELL)
LIMIT, MARKET = int(OrderType.LIMIT), int(OrderType.MARKET)
GTC, IOC, FOK, POST_ONLY = (int(t) for t in TimeInForce)
EXPIRE_TAKER, EXPIRE_MAKER, EXPIRE_BOTH = (int(StpMode.EXPIRE_TAKER), int(StpMode.EXPIRE_MAKER),
                                           int(StpMode.EXPIRE_BOTH))

ALICE, BOB, CAROL, MAKER, VIP = 1, 2, 3, 4, 5
TIERS = {ALICE: "regular", BOB: "regular", CAROL: "regular", MAKER: "market_maker", VIP: "vip1"}
FUNDING = {"USDT": "10000000", "BTC": "100", "ETH": "1000"}
PPM = 1_000_000


def amount(asset: str, text: str) -> int:
    """Minor units of ``text`` (a decimal string) of ``asset``."""
    return parse_decimal(text, CONFIG.assets[asset].scale)


def usdt(text: str) -> int:
    return amount("USDT", text)


def btc(text: str) -> int:
    return amount("BTC", text)


def eth(text: str) -> int:
    return amount("ETH", text)


def ceil_ppm(value: int, ppm: int) -> int:
    return math.ceil(Fraction(value * ppm, PPM))


def floor_ppm(value: int, ppm: int) -> int:
    return math.floor(Fraction(value * ppm, PPM))


def notional(market: str, price: int, quantity: int) -> int:
    """Quote minor units of ``quantity`` base minor at ``price`` (quote minor per whole base)."""
    spec = CONFIG.markets[market]
    value = Fraction(price * quantity, 10**spec.base.scale)
    assert value.denominator == 1, "test inputs must be on the grid"
    return int(value)


class Harness:
    """An engine plus a request-id and clock generator and short command builders."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.counter = 0

    def next_ids(self) -> tuple[str, int]:
        self.counter += 1
        return f"req-{self.counter}", 1_000_000 * self.counter

    def apply(self, command) -> list:
        return self.engine.apply(command)

    # ---- command builders (return the command, do not apply) -----------------
    def open_cmd(self, account: int, tier: str = "") -> OpenAccount:
        rid, ts = self.next_ids()
        return OpenAccount(rid, ts, account, tier)

    def deposit_cmd(self, account: int, asset: str, minor: int) -> Deposit:
        rid, ts = self.next_ids()
        return Deposit(rid, ts, account, asset, minor)

    def withdraw_cmd(self, account: int, asset: str, minor: int) -> Withdraw:
        rid, ts = self.next_ids()
        return Withdraw(rid, ts, account, asset, minor)

    def place_cmd(self, account: int, side: int, price: int, quantity: int, *, market: str = BTC_USDT,
                  order_type: int = LIMIT, tif: int = GTC, stp: int = 0, client_order_id: str = "") -> PlaceOrder:
        rid, ts = self.next_ids()
        return PlaceOrder(rid, ts, account, market, side, order_type, price, quantity, tif, client_order_id, stp)

    def cancel_cmd(self, account: int, order_id: int = 0, *, market: str = BTC_USDT,
                   client_order_id: str = "") -> CancelOrder:
        rid, ts = self.next_ids()
        return CancelOrder(rid, ts, account, market, order_id, client_order_id)

    def amend_cmd(self, account: int, order_id: int, *, price: int = 0, quantity: int = 0,
                  market: str = BTC_USDT) -> AmendOrder:
        rid, ts = self.next_ids()
        return AmendOrder(rid, ts, account, market, order_id, price, quantity)

    # ---- apply shortcuts -------------------------------------------------------
    def open(self, account: int, tier: str = "") -> list:
        return self.apply(self.open_cmd(account, tier))

    def deposit(self, account: int, asset: str, minor: int) -> list:
        return self.apply(self.deposit_cmd(account, asset, minor))

    def withdraw(self, account: int, asset: str, minor: int) -> list:
        return self.apply(self.withdraw_cmd(account, asset, minor))

    def place(self, account: int, side: int, price: int, quantity: int, **kw) -> list:
        return self.apply(self.place_cmd(account, side, price, quantity, **kw))

    def rest(self, account: int, side: int, price: int, quantity: int, **kw) -> int:
        """Place an order that must rest untouched; return its order id."""
        events = self.place(account, side, price, quantity, **kw)
        names = [type(e).__name__ for e in events]
        assert names == ["OrderAccepted", "OrderBooked"], events
        return events[0].order_id

    def cancel(self, account: int, order_id: int = 0, **kw) -> list:
        return self.apply(self.cancel_cmd(account, order_id, **kw))

    def amend(self, account: int, order_id: int, **kw) -> list:
        return self.apply(self.amend_cmd(account, order_id, **kw))

    # ---- views -------------------------------------------------------------------
    def available(self, account: int, asset: str) -> int:
        return self.engine.balances(account)[asset][0]

    def held(self, account: int, asset: str) -> int:
        return self.engine.balances(account)[asset][1]

    def fee_account(self, asset: str) -> int:
        return self.engine.shard.ledger.fees[CONFIG.assets[asset].index]

    def depth(self, market: str = BTC_USDT) -> tuple[list, list]:
        view = self.engine.markets[market].depth(10_000)
        return view["bids"], view["asks"]

    def queue(self, market: str, side: int) -> list[int]:
        """Resting order ids of one side, best price first, then time priority."""
        return [key[0] for key in self.engine.markets[market].book.canonical() if key[2] == side]


def custom_config(edit: Callable[[dict], object]) -> ExchangeConfig:
    """The default config with ``edit`` applied to a copy of its TOML document."""
    raw = copy.deepcopy(DEFAULT_RAW)
    edit(raw)
    return parse_config(raw, "custom.toml")


def funded_harness(config: ExchangeConfig = CONFIG, accounts: dict[int, str] = TIERS,
                   funding: dict[str, str] = FUNDING) -> Harness:
    harness = Harness(Engine(config))
    for account, tier in accounts.items():
        assert [type(e).__name__ for e in harness.open(account, tier)] == ["AccountOpened"]
        for asset, text in funding.items():
            assert [type(e).__name__ for e in harness.deposit(account, asset, amount(asset, text))] \
                == ["BalanceChanged"]
    return harness


# ---- state snapshots ------------------------------------------------------------

def business_state(engine: Engine) -> tuple:
    """Everything a user can observe except sequence counters: balances, holds,
    fee account, deposit totals, open orders (shard records and book entries),
    client order ids, last price and trade counts, margin settings and books,
    and the pools' money (cash, loans, supplier shares; not the clock's index)."""
    shard = engine.shard
    return (shard.ledger.canonical(),
            tuple(o.canonical() for _, o in sorted(shard.orders.items())),
            tuple((name, m.book.canonical(), m.last_price, m.trade_count)
                  for name, m in sorted(engine.markets.items())),
            tuple(sorted(shard.margin.settings.items())),
            tuple(b.canonical() for _, b in sorted(shard.margin.books.items())),
            tuple(shard.margin.supplying), tuple(shard.margin.fund_in),
            tuple((a, p.cash, p.borrowed_scaled, p.principal_total, tuple(sorted(p.loans.items())),
                   tuple(sorted(p.shares.items()))) for a, p in engine.lending.pools.items()))


def snapshot(engine: Engine) -> tuple:
    return engine.state_hash(), business_state(engine)


def fills_of(events: Iterable) -> list[Fill]:
    return [e for e in events if type(e) is Fill]


def names(events: Iterable) -> list[str]:
    return [type(e).__name__ for e in events]


def accepted_id(events: list) -> int:
    accepted = [e for e in events if type(e) is OrderAccepted]
    assert len(accepted) == 1, events
    return accepted[0].order_id


def assert_rejected(harness: Harness, command, reason: Reason, *, market_stage: bool = False) -> OrderRejected:
    """Apply ``command``; assert it is rejected with ``reason`` and changes nothing.

    A shard-stage rejection leaves ``state_hash`` identical. A market-stage one
    (post-only, FOK, no liquidity with a protection price, cancel/amend refused
    by the book) necessarily advances the market's sequence number and consumes
    an order id, both part of the hash; everything else must be identical.
    Replaying the command returns the same events and changes nothing either.
    """
    engine = harness.engine
    hash_before, state_before = snapshot(engine)
    balances_before = {a: engine.balances(a) for a in engine.shard.ledger.accounts}
    depth_before = {m: harness.depth(m) for m in engine.markets}
    events = engine.apply(command)
    assert len(events) == 1 and type(events[0]) is OrderRejected, events
    rejection = events[0]
    assert rejection.reason == reason, (Reason(rejection.reason), reason)
    # an invalid request id is not echoed back (it may not even be encodable)
    assert rejection.request_id == (None if reason == Reason.INVALID_REQUEST_ID else command.request_id)
    assert {a: engine.balances(a) for a in engine.shard.ledger.accounts} == balances_before
    assert {m: harness.depth(m) for m in engine.markets} == depth_before
    assert business_state(engine) == state_before
    if not market_stage:
        assert engine.state_hash() == hash_before
    engine.check_invariants()
    hash_after = engine.state_hash()
    assert engine.apply(command) == events
    assert engine.state_hash() == hash_after
    return rejection
