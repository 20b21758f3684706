"""Parity: the Ray liquidator (LiquidatorActor driving the domain ``Liquidator``
over messages) and ``Engine.run_liquidations`` (the same machine, in one
process) publish the same liquidation records for the same inputs: outcome,
fills, repaid, interest paid, shortfall covered by the fund, written off, the
levels and what was returned (timestamps differ, of course).

Two liquidations one after the other: a 10x long whose bid lies above the
bankruptcy price (the rest goes back to the user), and one whose only bid lies
under it (the insurance fund covers the gap). The fixture follows
tests/actors/test_margin.py: an OperatorClient with its own keyring sets the
index components and turns the pools' hour.
"""
from __future__ import annotations

import pytest
import ray

from actors import bootstrap
from exchange.config import load_config
from exchange.engine import Engine
from exchange.margin.liquidator import account_hash
from exchange.messages.records import (Deposit, EnableMargin, OpenAccount, PlaceMarginOrder, PlaceOrder, SupplyToPool,
                                       TransferMargin)
from tests.actors.test_margin import T0, start_margin_exchange, usd, wait_for

SUPPLIER, MAKER = 501, 502
COMPARED = ("outcome", "fills", "repaid", "interest_paid", "shortfall", "written_off", "level_before_ppm",
            "level_after_ppm", "returned", "remaining_debt", "mode", "market", "account_hash")
BUY, SELL, LIMIT, GTC, IOC = 1, 2, 1, 1, 2
# (trader, bid under the crash, the crash): above bankruptcy, then under it
CASES = [(503, "49000", "49400"), (504, "44000", "45000")]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    operator, path = start_margin_exchange(tmp_path_factory.mktemp("parity"))
    yield operator, load_config(path)
    bootstrap.destroy_actors(operator.client.handles)
    ray.shutdown()


class EngineSide:
    """The same steps on an in-process Engine."""

    def __init__(self, config):
        self.engine, self.config, self.n = Engine(config), config, 0
        self.engine.accrue(T0)

    def run(self, kind, account, *fields):
        self.n += 1
        return self.engine.apply(kind(f"p{self.n}", T0, account, *fields))

    def minor(self, asset: str, text: str) -> int:
        from exchange.core.money import parse_decimal
        return parse_decimal(text, self.config.assets[asset].scale)

    def open(self, account, **balances):
        self.run(OpenAccount, account, "zero")
        for asset, text in balances.items():
            self.run(Deposit, account, asset, self.minor(asset, text))

    def price(self, text: str) -> list:
        self.engine.set_index_prices({"BTC": usd(text), "USDT": usd(1)})     # the index quotes in USDT
        return self.engine.run_liquidations(T0)


def engine_records(config) -> dict:
    side = EngineSide(config)
    side.price("50000")
    side.open(SUPPLIER, USDT="100000")
    side.open(MAKER, BTC="10", USDT="200000")
    side.run(SupplyToPool, SUPPLIER, "USDT", usd("50000"))
    records = {}
    for trader, bid, crash in CASES:
        assert side.price("50000") == []
        side.open(trader, USDT="1000")
        side.run(EnableMargin, trader, "pro", "10x")
        side.run(TransferMargin, trader, "USDT", usd("1000"), True, "")
        side.run(PlaceOrder, MAKER, "BTC-USDT", SELL, LIMIT, usd("50000"), 20_000_000, GTC)
        side.run(PlaceMarginOrder, trader, "BTC-USDT", BUY, LIMIT, usd("50000"), 20_000_000, IOC, False, True, True)
        side.run(PlaceOrder, MAKER, "BTC-USDT", BUY, LIMIT, usd(bid), 20_000_000, GTC)
        [record] = side.price(crash)
        records[trader] = record
        side.engine.check_invariants()
    assert not any(side.engine.conservation().values())
    return records


def test_ray_liquidator_publishes_the_same_records_as_the_engine(setup):
    operator, config = setup
    ex = operator.client
    expected = engine_records(config)
    assert expected[504]["shortfall"] and not expected[503]["shortfall"]      # the cases mean what they say

    def price(text: str) -> None:
        operator.set_index_component("BTC", "sim-alpha", usd(text), 1, T0)

    operator.accrue_interest(T0)
    price("50000")
    for account, balances in ((SUPPLIER, {"USDT": "100000"}), (MAKER, {"BTC": "10", "USDT": "200000"})):
        assert ex.open_account(account, "zero").ok
        for asset, amount in balances.items():
            assert ex.deposit(account, asset, amount).ok
    assert ex.supply(SUPPLIER, "USDT", "50000").ok
    for trader, bid, crash in CASES:
        price("50000")
        assert ex.open_account(trader, "zero").ok and ex.deposit(trader, "USDT", "1000").ok
        assert ex.enable_margin(trader, "pro", "10x").ok and ex.transfer_margin(trader, "USDT", "1000").ok
        assert ex.place_order(MAKER, "BTC-USDT", "sell", "0.2", price="50000").ok
        assert ex.margin_order(trader, "BTC-USDT", "buy", "0.2", price="50000", tif="ioc").status == "filled"
        assert ex.place_order(MAKER, "BTC-USDT", "buy", "0.2", price=bid).ok
        price(crash)
        record = wait_for(lambda: next((r for r in ex.liquidations(1000) if r["account_hash"] ==
                                        account_hash(trader) and r.get("outcome")), None))
        assert {k: record.get(k) for k in COMPARED} == {k: expected[trader].get(k) for k in COMPARED}, trader
    fund = ex.insurance_fund()
    assert fund["bad_debt"]["USDT"] == expected[504]["shortfall"]["USDT"]
    assert ex.audit()["ok"]
