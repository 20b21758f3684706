"""The REST endpoints over real HTTP (``requests``) against the gateway on loopback and a
real exchange on Ray: public market data, an order's whole life in Binance's shapes, and
every refusal as a Binance error body that changes nothing."""
from __future__ import annotations

import time

import requests

from gateway.server import BODY_BYTES_MAX
from tests.gateway.conftest import Trader


def test_the_public_endpoints_answer_in_binances_shapes(venue):
    client, _, served = venue
    assert requests.get(f"{served.url}/api/v3/ping", timeout=10).json() == {}
    assert "/api/v3/order" in requests.get(f"{served.url}/api/v3/openapi.json", timeout=10).json()["paths"]
    server_ms = requests.get(f"{served.url}/api/v3/time", timeout=10).json()["serverTime"]
    assert abs(server_ms - time.time() * 1000) < 5_000
    info = requests.get(f"{served.url}/api/v3/exchangeInfo", timeout=10).json()
    btc = next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT")
    filters = {f["filterType"]: f for f in btc["filters"]}
    assert (btc["baseAsset"], btc["quoteAsset"], btc["status"]) == ("BTC", "USDT", "TRADING")
    assert filters["PRICE_FILTER"]["tickSize"] == "0.010000" and filters["LOT_SIZE"]["stepSize"] == "0.00010000"
    book = requests.get(f"{served.url}/api/v3/depth", params={"symbol": "BTCUSDT", "limit": 5}, timeout=10).json()
    assert set(book) == {"lastUpdateId", "bids", "asks"}


def test_an_order_lives_placed_queried_listed_and_cancelled_and_its_funds_are_held_then_freed(traders, venue):
    alice = traders[0]
    placed = alice.signed("POST", "/api/v3/order", symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                          quantity="0.5", price="40000.00", newClientOrderId="bot-1")
    assert placed.status_code == 200, placed.text
    order = placed.json()
    assert (order["status"], order["clientOrderId"], order["executedQty"], order["fills"]) == \
        ("NEW", "bot-1", "0.00000000", [])
    seen = alice.signed("GET", "/api/v3/order", symbol="BTCUSDT", orderId=order["orderId"]).json()
    assert (seen["status"], seen["price"], seen["origQty"], seen["side"]) == ("NEW", "40000.000000", "0.50000000", "BUY")
    assert [o["orderId"] for o in alice.signed("GET", "/api/v3/openOrders", symbol="BTCUSDT").json()] == \
        [order["orderId"]]
    usdt = {b["asset"]: b for b in alice.signed("GET", "/api/v3/account").json()["balances"]}["USDT"]
    assert usdt["locked"] != "0.000000"
    book = requests.get(f"{alice.url}/api/v3/depth", params={"symbol": "BTCUSDT"}, timeout=10).json()
    assert ["40000.000000", "0.50000000"] in book["bids"]
    cancelled = alice.signed("DELETE", "/api/v3/order", symbol="BTCUSDT", orderId=order["orderId"])
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "CANCELED"
    usdt = {b["asset"]: b for b in alice.signed("GET", "/api/v3/account").json()["balances"]}["USDT"]
    assert usdt == {"asset": "USDT", "free": "1000000.000000", "locked": "0.000000"}
    again = alice.signed("DELETE", "/api/v3/order", symbol="BTCUSDT", orderId=order["orderId"])
    assert again.status_code == 400 and again.json()["code"] == -2011


def test_a_signature_covers_the_query_as_sent_percent_escapes_and_all(traders):
    """The client signs the encoded query (a comma as %2C, a space as +, a colon as %3A), as
    Binance's libraries do; the gateway checks the bytes it received, not a decoded copy."""
    alice = traders[0]
    placed = alice.signed("POST", "/api/v3/order", symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                          quantity="0.1", price="30000.00", newClientOrderId="grid-12", note="levels 1:2,3")
    assert placed.status_code == 200, placed.text
    assert "%3A" in alice.query(note="levels 1:2,3") and "%2C" in alice.query(note="levels 1:2,3")
    seen = alice.signed("GET", "/api/v3/order", symbol="BTCUSDT", orderId=placed.json()["orderId"], note="a b,c")
    assert seen.status_code == 200 and seen.json()["clientOrderId"] == "grid-12"
    assert alice.signed("DELETE", "/api/v3/order", symbol="BTCUSDT", orderId=placed.json()["orderId"]).ok


def test_a_crossing_order_fills_with_its_fills_and_commission(traders):
    alice, bob = traders
    resting = bob.signed("POST", "/api/v3/order", symbol="ETHUSDT", side="SELL", type="LIMIT_MAKER",
                         quantity="2", price="3000.00").json()
    assert resting["status"] == "NEW"
    taken = alice.signed("POST", "/api/v3/order", symbol="ETHUSDT", side="BUY", type="LIMIT", timeInForce="IOC",
                         quantity="2", price="3000.00").json()
    assert taken["status"] == "FILLED" and taken["executedQty"] == "2.00000000"
    assert taken["cummulativeQuoteQty"] == "6000.000000"
    assert [(f["price"], f["qty"]) for f in taken["fills"]] == [("3000.000000", "2.00000000")]
    assert float(taken["fills"][0]["commission"]) > 0


def test_the_trades_and_tickers_show_the_last_trade_and_the_best_prices(traders, venue):
    client, _, served = venue
    get = lambda path, **params: requests.get(f"{served.url}/api/v3/{path}", params=params, timeout=10)  # noqa: E731
    trades = get("trades", symbol="ETHUSDT", limit=5).json()
    last = trades[-1]
    assert (last["price"], last["qty"], last["quoteQty"], last["isBuyerMaker"]) == \
        ("3000.000000", "2.00000000", "6000.000000", False)                       # alice bought: the taker
    assert get("ticker/price", symbol="ETHUSDT").json() == {"symbol": "ETHUSDT", "price": "3000.000000"}
    book = client.order_book("BTC-USDT", 1)
    best = get("ticker/bookTicker", symbol="BTCUSDT").json()
    assert best["symbol"] == "BTCUSDT" and set(best) == {"symbol", "bidPrice", "bidQty", "askPrice", "askQty"}
    assert (best["bidPrice"] != "0.000000") == bool(book["bids"])
    assert {t["symbol"] for t in get("ticker/price").json()} == {"BTCUSDT", "ETHUSDT"}
    assert get("trades", symbol="ETHUSDT", limit=1001).json()["code"] == -1100


def test_each_bad_request_is_a_binance_error_and_places_nothing(traders, venue):
    client, keys, served = venue
    alice = traders[0]
    before = client.open_orders(31_001)
    order = dict(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.1", price="40000.00")
    cases = [
        (alice.signed("POST", "/api/v3/order", **{**order, "symbol": "DOGEUSDT"}), 400, -1121),
        (alice.signed("POST", "/api/v3/order", **{**order, "side": "HOLD"}), 400, -1117),
        (alice.signed("POST", "/api/v3/order", **{**order, "type": "STOP"}), 400, -1116),
        (alice.signed("POST", "/api/v3/order", **{**order, "quantity": "0.123456789"}), 400, -1111),
        (alice.signed("POST", "/api/v3/order", **{**order, "price": "abc"}), 400, -1100),
        (alice.signed("POST", "/api/v3/order", **{**order, "quantity": "1000000"}), 400, -1013),
        (alice.signed("POST", "/api/v3/order", **{k: v for k, v in order.items() if k != "price"}), 400, -1102),
        (alice.signed("POST", "/api/v3/order", **{**order, "price": "50000.00", "quantity": "99"}), 400, -2010),
        (alice.signed("POST", "/api/v3/order", **order, timestamp=int(time.time() * 1000) - 60_000), 400, -1021),
    ]
    tampered = alice.query(**order).replace("quantity=0.1", "quantity=0.2")
    forged = requests.post(f"{served.url}/api/v3/order?{tampered}", headers={"X-MBX-APIKEY": alice.key}, timeout=10)
    cases.append((forged, 401, -1022))
    reader_key, reader_secret = keys.create(31_001, ["read"])
    reader = Trader(served.url, reader_key, reader_secret)
    cases.append((reader.signed("POST", "/api/v3/order", **order), 401, -2015))
    url = f"{served.url}/api/v3/order?symbol=BTCUSDT&symbol=ETHUSDT"
    cases.append((requests.post(url, headers={"X-MBX-APIKEY": alice.key}, timeout=10), 400, -1101))
    big = requests.post(f"{served.url}/api/v3/order", data="x=" + "1" * BODY_BYTES_MAX,
                        headers={"X-MBX-APIKEY": alice.key, "Content-Type": "application/x-www-form-urlencoded"},
                        timeout=10)
    cases.append((big, 413, -1102))
    malformed = requests.post(f"{served.url}/api/v3/order", data='{"symbol": "BTCUSDT", "side": ',
                              headers={"X-MBX-APIKEY": alice.key, "Content-Type": "application/json"}, timeout=10)
    cases.append((malformed, 400, -1100))                    # a JSON body, and a broken one: not Binance's form
    cases.append((alice.signed("GET", "/api/v3/order", symbol="BTCUSDT", orderId="twelve"), 400, -1100))
    cases.append((alice.signed("GET", "/api/v3/order", symbol="BTCUSDT", orderId="1", timestamp="soon"), 400, -1102))
    cases.append((requests.get(f"{served.url}/api/v3/nothing", timeout=10), 404, -1000))
    for response, status, code in cases:
        assert (response.status_code, response.json()["code"]) == (status, code), response.text
        assert set(response.json()) == {"code", "msg"}
    assert "INSUFFICIENT_BALANCE" in cases[7][0].json()["msg"]
    checked = alice.signed("POST", "/api/v3/order/test", **order)
    assert (checked.status_code, checked.json()) == (200, {})                       # checked, not placed
    refused = alice.signed("POST", "/api/v3/order/test", **{**order, "side": "HOLD"})
    assert refused.json()["code"] == -1117
    assert client.open_orders(31_001) == before


def test_a_client_past_its_weight_is_told_to_wait_then_banned_and_every_answer_says_its_weight(venue):
    from gateway.limits import RateLimiter
    from gateway.server import Gateway
    from tests.gateway.conftest import Served
    client, keys, served = venue
    strict = Served(Gateway(client, keys, per_address=RateLimiter(weight_per_minute=25, strikes_to_ban=3)))
    try:
        ok = requests.get(f"{strict.url}/api/v3/exchangeInfo", timeout=10)             # weight 20
        assert ok.status_code == 200 and ok.headers["X-MBX-USED-WEIGHT-1M"] == "20"
        book = requests.get(f"{strict.url}/api/v3/depth", params={"symbol": "BTCUSDT", "limit": 5000}, timeout=10)
        assert (book.status_code, book.json().get("code")) == (429, -1003), (book.status_code, book.text[:300])  # 250
        assert 0 < int(book.headers["Retry-After"]) <= 60
        assert requests.get(f"{strict.url}/api/v3/ping", timeout=10).headers["X-MBX-USED-WEIGHT-1M"] == "21"
        answers = [requests.get(f"{strict.url}/api/v3/exchangeInfo", timeout=10) for _ in range(3)]
        assert [a.status_code for a in answers] == [429, 418, 418]                      # kept on: banned
        assert int(answers[-1].headers["Retry-After"]) > 60
        assert requests.get(f"{served.url}/api/v3/ping", timeout=10).status_code == 200  # another gateway's budget
    finally:
        strict.stop()
