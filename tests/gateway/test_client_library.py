"""A widely used open-source client library, python-binance, unmodified except for its base
URL, trades through the gateway: it pings, reads the server time and the symbol's filters,
places a limit order, finds it by id and among the open orders, sees its funds locked in
the account, cancels it, and gets Binance's exception with Binance's code for a bad symbol."""
from __future__ import annotations

import pytest
from binance.client import Client
from binance.exceptions import BinanceAPIException


def test_python_binance_places_queries_cancels_and_reads_balances(venue, monkeypatch):
    client, keys, served = venue
    assert client.open_account(31_201).ok and client.deposit(31_201, "USDT", "100000").ok
    key, secret = keys.create(31_201, ["read", "trade"])
    monkeypatch.setattr(Client, "API_URL", served.url + "/api")             # its base URL, nothing else
    bot = Client(key, secret)                                                # pings on creation
    assert bot.get_server_time()["serverTime"] > 0
    filters = {f["filterType"]: f for f in bot.get_symbol_info("BTCUSDT")["filters"]}
    assert filters["LOT_SIZE"]["stepSize"] == "0.00010000"
    order = bot.create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.0100",
                             price="30000.00")
    assert order["status"] == "NEW" and order["origQty"] == "0.0100"
    assert bot.get_order(symbol="BTCUSDT", orderId=order["orderId"])["status"] == "NEW"
    assert [o["orderId"] for o in bot.get_open_orders(symbol="BTCUSDT")] == [order["orderId"]]
    usdt = bot.get_asset_balance(asset="USDT")
    assert (usdt["free"], usdt["locked"]) == ("99699.700000", "300.300000")     # 300 and the taker fee held
    assert bot.cancel_order(symbol="BTCUSDT", orderId=order["orderId"])["status"] == "CANCELED"
    assert bot.get_open_orders(symbol="BTCUSDT") == []
    assert bot.get_asset_balance(asset="USDT")["free"] == "100000.000000"
    with pytest.raises(BinanceAPIException) as refused:
        bot.create_order(symbol="DOGEUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="1", price="1")
    assert refused.value.code == -1121
