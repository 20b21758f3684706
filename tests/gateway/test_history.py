"""The rolling 24-hour ticker, ``allOrders``, ``myTrades`` and a closed order's
``GET /api/v3/order`` over real HTTP against the gateway and a real exchange: a maker's
order filled in two trades, another cancelled; what the history shows agrees with the
orders' own answers and with the balances; bad requests get Binance's codes."""
from __future__ import annotations

from decimal import Decimal

import pytest
import requests

from tests.gateway.conftest import Trader


@pytest.fixture(scope="module")
def pair(venue):
    client, keys, served = venue
    out = []
    for account in (31_211, 31_212):
        assert client.open_account(account).ok
        for asset, amount in (("USDT", "1000000"), ("BTC", "10")):
            assert client.deposit(account, asset, amount).ok
        out.append(Trader(served.url, *keys.create(account, ["read", "trade"])))
    return out


def ticker(url: str) -> dict:
    return requests.get(f"{url}/api/v3/ticker/24hr", params={"symbol": "BTCUSDT"}, timeout=10).json()


def usdt(trader: Trader) -> Decimal:
    balances = {b["asset"]: b for b in trader.signed("GET", "/api/v3/account").json()["balances"]}
    return Decimal(balances["USDT"]["free"]) + Decimal(balances["USDT"]["locked"])


def test_a_maker_filled_in_two_trades_and_a_cancel_show_in_the_history_ticker_and_balances(pair):
    maker, taker = pair
    before, taker_usdt = ticker(maker.url), usdt(taker)
    ask = maker.signed("POST", "/api/v3/order", symbol="BTCUSDT", side="SELL", type="LIMIT_MAKER",
                       quantity="1", price="45000.00", newClientOrderId="ask-1").json()
    spare = maker.signed("POST", "/api/v3/order", symbol="BTCUSDT", side="SELL", type="LIMIT_MAKER",
                         quantity="0.1", price="70000.00").json()
    takes = [taker.signed("POST", "/api/v3/order", symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="IOC",
                          quantity=q, price="45000.00").json() for q in ("0.4", "0.6")]
    assert [t["status"] for t in takes] == ["FILLED", "FILLED"]
    assert maker.signed("DELETE", "/api/v3/order", symbol="BTCUSDT", orderId=spare["orderId"]).status_code == 200

    orders = {o["orderId"]: o for o in maker.signed("GET", "/api/v3/allOrders", symbol="BTCUSDT").json()}
    assert (orders[ask["orderId"]]["status"], orders[ask["orderId"]]["executedQty"],
            orders[ask["orderId"]]["cummulativeQuoteQty"], orders[ask["orderId"]]["clientOrderId"]) == \
        ("FILLED", "1.00000000", "45000.000000", "ask-1")
    assert (orders[spare["orderId"]]["status"], orders[spare["orderId"]]["isWorking"]) == ("CANCELED", False)
    closed = maker.signed("GET", "/api/v3/order", symbol="BTCUSDT", orderId=ask["orderId"]).json()
    assert closed == orders[ask["orderId"]]

    fills = [f for t in takes for f in t["fills"]]
    mine = taker.signed("GET", "/api/v3/myTrades", symbol="BTCUSDT").json()
    assert [(t["id"], t["qty"], t["commission"], t["isBuyer"], t["isMaker"]) for t in mine[-2:]] == \
        [(f["tradeId"], f["qty"], f["commission"], True, False) for f in fills]
    spent = sum(Decimal(t["quoteQty"]) + Decimal(t["commission"]) for t in mine[-2:])
    assert usdt(taker) == taker_usdt - spent
    theirs = maker.signed("GET", "/api/v3/myTrades", symbol="BTCUSDT", orderId=ask["orderId"]).json()
    assert [(t["id"], t["isMaker"], t["isBuyer"]) for t in theirs] == [(f["tradeId"], True, False) for f in fills]
    assert maker.signed("GET", "/api/v3/myTrades", symbol="BTCUSDT", fromId=fills[1]["tradeId"]).json() == theirs[1:]

    after = ticker(maker.url)
    assert after["count"] == before["count"] + 2 and after["lastId"] == fills[1]["tradeId"]
    assert Decimal(after["volume"]) == Decimal(before["volume"]) + 1
    assert Decimal(after["quoteVolume"]) == Decimal(before["quoteVolume"]) + 45000
    assert after["lastPrice"] == "45000.000000" and Decimal(after["highPrice"]) >= 45000 >= Decimal(after["lowPrice"])
    assert after["closeTime"] - after["openTime"] >= 86_400_000
    every = requests.get(f"{maker.url}/api/v3/ticker/24hr", timeout=10).json()
    assert {t["symbol"] for t in every} == {"BTCUSDT", "ETHUSDT"}


@pytest.mark.parametrize("path, params, code", [
    ("/api/v3/allOrders", {}, -1102),
    ("/api/v3/allOrders", {"symbol": "DOGEUSDT"}, -1121),
    ("/api/v3/allOrders", {"symbol": "BTCUSDT", "limit": 0}, -1100),
    ("/api/v3/allOrders", {"symbol": "BTCUSDT", "limit": 1001}, -1100),
    ("/api/v3/allOrders", {"symbol": "BTCUSDT", "startTime": 1, "endTime": 90_000_000}, -1127),
    ("/api/v3/myTrades", {"symbol": "BTCUSDT", "fromId": 1, "orderId": 1}, -1106),
    ("/api/v3/myTrades", {"symbol": "BTCUSDT", "orderId": "x"}, -1100),
])
def test_bad_history_requests_get_binances_codes(pair, path, params, code):
    refused = pair[0].signed("GET", path, **params)
    assert refused.status_code == 400 and refused.json()["code"] == code, refused.text


def test_nobody_sees_anothers_orders_or_trades(pair):
    maker, taker = pair
    theirs = maker.signed("GET", "/api/v3/allOrders", symbol="BTCUSDT").json()
    assert theirs
    seen = taker.signed("GET", "/api/v3/order", symbol="BTCUSDT", orderId=theirs[0]["orderId"])
    assert seen.status_code == 400 and seen.json()["code"] == -2013
    assert not {o["orderId"] for o in theirs} & {o["orderId"] for o in
                                                 taker.signed("GET", "/api/v3/allOrders", symbol="BTCUSDT").json()}


def test_each_order_shows_the_type_and_time_in_force_it_was_placed_with(pair):
    maker, taker = pair
    rest = maker.signed("POST", "/api/v3/order", symbol="BTCUSDT", side="SELL", type="LIMIT_MAKER",
                        quantity="0.2", price="46000.00").json()
    placed = {"fok": taker.signed("POST", "/api/v3/order", symbol="BTCUSDT", side="BUY", type="LIMIT",
                                  timeInForce="FOK", quantity="0.1", price="46000.00").json(),
              "market": taker.signed("POST", "/api/v3/order", symbol="BTCUSDT", side="BUY", type="MARKET",
                                     quantity="0.05").json(),
              "gtc": taker.signed("POST", "/api/v3/order", symbol="BTCUSDT", side="BUY", type="LIMIT",
                                  timeInForce="GTC", quantity="0.01", price="44900.00").json()}
    assert all("orderId" in o for o in placed.values()), placed
    resting = maker.signed("GET", "/api/v3/order", symbol="BTCUSDT", orderId=rest["orderId"]).json()
    assert (resting["status"], resting["type"], resting["timeInForce"]) == ("PARTIALLY_FILLED", "LIMIT_MAKER", "GTC")
    listed = {o["orderId"]: o for o in taker.signed("GET", "/api/v3/openOrders", symbol="BTCUSDT").json()}
    assert (listed[placed["gtc"]["orderId"]]["type"], listed[placed["gtc"]["orderId"]]["timeInForce"]) == \
        ("LIMIT", "GTC")
    every = {o["orderId"]: o for o in taker.signed("GET", "/api/v3/allOrders", symbol="BTCUSDT").json()}
    assert {name: (every[o["orderId"]]["type"], every[o["orderId"]]["timeInForce"]) for name, o in placed.items()} \
        == {"fok": ("LIMIT", "FOK"), "market": ("MARKET", "GTC"), "gtc": ("LIMIT", "GTC")}
    for trader, order in ((maker, rest), (taker, placed["gtc"])):
        assert trader.signed("DELETE", "/api/v3/order", symbol="BTCUSDT", orderId=order["orderId"]).status_code == 200
