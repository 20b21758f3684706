"""The account products over real HTTP against the gateway on loopback and a real exchange
on Ray (``gateway/products``): margin, perpetuals, convert (the OTC desk) and
withdrawals, each checked against the client handle's own view; a key without the
permission refused -2015; bad input refused with its Binance code and nothing changed.

Accounts 32_001..32_007 are this module's. It needs the index feed and the pools' clock,
which the package's venue starts: margin levels, perpetual marks, OTC quotes and
withdrawal values need index prices."""
from __future__ import annotations

import time

import pytest
import ray
import requests

from exchange.core.money import format_decimal
from tests.gateway.conftest import Trader, eventually

MARGIN, LONG, SHORT, CONVERT, WITHDRAW, BARE, LENDER = 32_001, 32_002, 32_003, 32_004, 32_005, 32_006, 32_007
PERP, PERP_SYMBOL = "BTC-USDT-PERP", "BTCUSDTPERP"


@pytest.fixture(scope="module")
def desk(venue):
    """This module's accounts funded, keys for each: ``{name: Trader}``."""
    client, keys, served = venue
    for account in (MARGIN, LONG, SHORT, CONVERT, WITHDRAW, BARE, LENDER):
        assert client.open_account(account).ok
        for asset, amount in (("USDT", "1000000"), ("BTC", "10")):
            assert client.deposit(account, asset, amount).ok
    otc_desk = int(client.config.sections["otc"]["desk_account"])
    if client.balances(otc_desk) is None:
        assert client.open_account(otc_desk).ok
        assert client.deposit(otc_desk, "BTC", "500").ok and client.deposit(otc_desk, "USDT", "50000000").ok
    assert client.enable_margin(MARGIN).ok and client.supply(LENDER, "BTC", "5").ok     # the pool lends it

    def trader(account: int, *permissions: str) -> Trader:
        return Trader(served.url, *keys.create(account, list(permissions)))
    return {"margin": trader(MARGIN, "read", "trade"), "margin_read": trader(MARGIN, "read"),
            "long": trader(LONG, "read", "trade"), "short": trader(SHORT, "read", "trade"),
            "long_read": trader(LONG, "read"), "convert": trader(CONVERT, "read", "trade"),
            "convert_read": trader(CONVERT, "read"), "withdraw": trader(WITHDRAW, "read", "withdraw"),
            "no_withdraw": trader(WITHDRAW, "read", "trade"), "bare": trader(BARE, "read", "trade")}


def ok(response: requests.Response) -> dict | list:
    assert response.status_code == 200, response.text
    return response.json()


def refused(response: requests.Response, code: int) -> dict:
    assert response.json()["code"] == code, response.text
    assert response.status_code == (401 if code == -2015 else 400)
    return response.json()


# ---- margin ---------------------------------------------------------------------------------
def test_margin_transfer_borrow_order_and_repay_show_in_the_margin_book(desk, venue):
    client, trader = venue[0], desk["margin"]
    ok(trader.signed("POST", "/sapi/v1/margin/transfer", asset="USDT", amount="20000", type=1))
    assert client.margin_book(MARGIN)["available"]["USDT"] == 20_000 * 10**6
    assert client.balances(MARGIN)["USDT"][0] == 980_000 * 10**6
    loan = ok(trader.signed("POST", "/sapi/v1/margin/loan", asset="BTC", amount="0.05"))
    assert isinstance(loan["tranId"], int)
    book = client.margin_book(MARGIN)
    assert book["principal"]["BTC"] == 5_000_000 and book["available"]["BTC"] == 5_000_000
    account = ok(trader.signed("GET", "/sapi/v1/margin/account"))
    btc = next(a for a in account["userAssets"] if a["asset"] == "BTC")
    assert (btc["free"], btc["borrowed"], btc["locked"]) == ("0.05000000", "0.05000000", "0.00000000")
    assert account["marginLevel"] != "999" and account["tradeEnabled"]

    # a sell of more BTC than the book holds borrows the rest (MARGIN_BUY); it rests as a maker
    placed = ok(trader.signed("POST", "/sapi/v1/margin/order", symbol="BTCUSDT", side="SELL", type="LIMIT_MAKER",
                              quantity="0.08", price="70000.00", sideEffectType="MARGIN_BUY"))
    assert (placed["status"], placed["isIsolated"]) == ("NEW", False)
    assert (placed["marginBuyBorrowAsset"], placed["marginBuyBorrowAmount"]) == ("BTC", "0.03000000")
    book = client.margin_book(MARGIN)
    assert book["principal"]["BTC"] == 8_000_000 and book["held"]["BTC"] == 8_000_000
    assert client.cancel_order(MARGIN, "BTC-USDT", placed["orderId"]).ok

    ok(trader.signed("POST", "/sapi/v1/margin/repay", asset="BTC", amount="0.08"))
    assert eventually(lambda: client.margin_book(MARGIN)["debt"]["BTC"] < 8_000_000)
    ok(trader.signed("POST", "/sapi/v1/margin/transfer", asset="USDT", amount="1000", type=2))
    assert client.margin_book(MARGIN)["available"]["USDT"] == 19_000 * 10**6

    ok(trader.signed("POST", "/sapi/v1/margin/isolated/transfer", asset="USDT", symbol="BTCUSDT", amount="500",
                     transFrom="SPOT", transTo="ISOLATED_MARGIN"))
    assert client.margin_book(MARGIN, "BTC-USDT")["available"]["USDT"] == 500 * 10**6
    isolated, = ok(trader.signed("GET", "/sapi/v1/margin/isolated/account", symbols="BTCUSDT"))["assets"]
    assert (isolated["symbol"], isolated["quoteAsset"]["free"], isolated["marginLevel"]) == \
        ("BTCUSDT", "500.000000", "999")


def held_and_owed(book: dict) -> dict:
    """A margin book's state, without its valuation at the moving index prices."""
    return {k: v for k, v in book.items() if k not in ("level_ppm", "zone")}


def test_margin_refusals_carry_their_code_and_change_nothing(desk, venue):
    client, trader = venue[0], desk["margin"]
    before, spot = held_and_owed(client.margin_book(MARGIN)), client.balances(MARGIN)
    for params, code in ((dict(asset="BTC", amount="0.000000001"), -1111), (dict(asset="BTC", amount="1e3"), -1100),
                         (dict(asset="DOGE", amount="1"), -3027), (dict(asset="BTC", amount="10000"), -3006),
                         (dict(asset="BTC", amount="0"), -1130), (dict(asset="BTC"), -1102),
                         (dict(asset="BTC", amount="1", isIsolated="TRUE", symbol="NOPE"), -1121)):
        refused(trader.signed("POST", "/sapi/v1/margin/loan", **params), code)
    refused(trader.signed("POST", "/sapi/v1/margin/transfer", asset="USDT", amount="1", type=3), -1130)
    refused(trader.signed("POST", "/sapi/v1/margin/transfer", asset="USDT", amount="10000000", type=1), -2010)
    refused(trader.signed("POST", "/sapi/v1/margin/order", symbol="BTCUSDT", side="SELL", type="LIMIT",
                          quantity="0.01", price="70000.00", sideEffectType="BORROW_MORE"), -1130)
    refused(desk["margin_read"].signed("POST", "/sapi/v1/margin/loan", asset="BTC", amount="0.01"), -2015)
    refused(desk["bare"].signed("GET", "/sapi/v1/margin/account"), -3003)
    refused(desk["bare"].signed("POST", "/sapi/v1/margin/loan", asset="BTC", amount="0.01"), -3003)
    assert held_and_owed(client.margin_book(MARGIN)) == before and client.balances(MARGIN) == spot


# ---- perpetuals --------------------------------------------------------------------------------
def test_perpetual_settings_orders_and_positions_match_the_desk(desk, venue):
    client = venue[0]
    long_, short = desk["long"], desk["short"]
    for trader, account in ((long_, LONG), (short, SHORT)):
        ok(trader.signed("POST", "/sapi/v1/futures/transfer", asset="USDT", amount="20000", type=1))
        assert client.perp_wallet(account)["USDT"]["cash"] == 20_000 * 10**6
    assert ok(long_.signed("GET", "/fapi/v2/balance"))[0]["balance"] == "20000.000000"
    premium = eventually(lambda: (p := requests.get(f"{long_.url}/fapi/v1/premiumIndex", params={
        "symbol": PERP_SYMBOL}, timeout=10).json())["markPrice"] and p)
    prices = client.perp_prices(PERP)
    assert premium["nextFundingTime"] == prices["next_funding_ns"] // 1_000_000
    assert premium["lastFundingRate"] == format_decimal(prices["funding_rate"], 8) and premium["indexPrice"]
    brackets = ok(long_.signed("GET", "/fapi/v1/leverageBracket", symbol=PERP_SYMBOL))["brackets"]
    assert brackets[0]["bracket"] == 1 and brackets[0]["initialLeverage"] == 100
    assert brackets[1]["notionalFloor"] == brackets[0]["notionalCap"] == "1000000.000000"

    assert ok(long_.signed("POST", "/fapi/v1/marginType", symbol=PERP_SYMBOL, marginType="ISOLATED"))["code"] == 200
    assert ok(long_.signed("POST", "/fapi/v1/riskLimit", symbol=PERP_SYMBOL, bracket=2))["bracket"] == 2
    assert ok(long_.signed("POST", "/fapi/v1/leverage", symbol=PERP_SYMBOL, leverage=10))["leverage"] == 10

    mark = client.perp_prices(PERP)["mark"]
    price = f"{mark // 10}.{mark % 10}"                       # ticks of 0.1 USDT
    resting = ok(short.signed("POST", "/fapi/v1/order", symbol=PERP_SYMBOL, side="SELL", type="LIMIT",
                              timeInForce="GTC", quantity="0.01", price=price))
    assert resting["status"] == "NEW"
    taken = ok(long_.signed("POST", "/fapi/v1/order", symbol=PERP_SYMBOL, side="BUY", type="LIMIT",
                            timeInForce="IOC", quantity="0.01", price=price))
    assert (taken["status"], taken["executedQty"]) == ("FILLED", "0.01000000")
    view = eventually(lambda: client.perp_position(LONG, PERP))
    position, = ok(long_.signed("GET", "/fapi/v2/positionRisk", symbol=PERP_SYMBOL))
    assert view["size"] == 1_000_000 and view["leverage"] == 10 and view["isolated"] and view["risk_tier"] == 1
    assert (position["positionAmt"], position["leverage"], position["marginType"], position["bracket"]) == \
        ("0.01000000", "10", "isolated", 2)
    assert position["entryPrice"] == f"{price}00000"
    refused(long_.signed("POST", "/fapi/v1/marginType", symbol=PERP_SYMBOL, marginType="CROSSED"), -4048)

    bid = ok(long_.signed("POST", "/fapi/v1/order", symbol=PERP_SYMBOL, side="BUY", type="LIMIT",
                          quantity="0.01", price=f"{(mark - 200) // 10}.0"))
    assert ok(long_.signed("DELETE", "/fapi/v1/order", symbol=PERP_SYMBOL, orderId=bid["orderId"]))["status"] == \
        "CANCELED"
    refused(long_.signed("DELETE", "/fapi/v1/order", symbol=PERP_SYMBOL, orderId=bid["orderId"]), -2011)


def test_perpetual_refusals_carry_their_code_and_change_nothing(desk, venue):
    client, long_ = venue[0], desk["long"]
    wallet, spot = client.perp_wallet(LONG), client.balances(LONG)
    order = dict(symbol=PERP_SYMBOL, side="BUY", type="LIMIT", quantity="0.01", price="1000.0")
    refused(long_.signed("POST", "/fapi/v1/order", **{**order, "symbol": "BTCUSDT"}), -1121)
    refused(long_.signed("POST", "/fapi/v1/order", **{**order, "quantity": "0.000000001"}), -1111)
    refused(long_.signed("POST", "/fapi/v1/order", **{**order, "quantity": "0.0001"}), -1013)
    refused(long_.signed("POST", "/fapi/v1/order", **{**order, "price": "1000.05"}), -1013)
    refused(long_.signed("POST", "/fapi/v1/order", **{**order, "type": "STOP"}), -1116)
    refused(desk["long_read"].signed("POST", "/fapi/v1/order", **order), -2015)
    refused(long_.signed("POST", "/fapi/v1/leverage", symbol=PERP_SYMBOL, leverage=0), -4028)
    refused(long_.signed("POST", "/fapi/v1/leverage", symbol=PERP_SYMBOL, leverage=1000), -4028)
    refused(long_.signed("POST", "/fapi/v1/leverage", symbol=PERP_SYMBOL, leverage="ten"), -1100)
    refused(long_.signed("POST", "/fapi/v1/riskLimit", symbol=PERP_SYMBOL, bracket=99), -1130)
    refused(long_.signed("POST", "/fapi/v1/marginType", symbol=PERP_SYMBOL, marginType="FOO"), -1130)
    refused(long_.signed("POST", "/sapi/v1/futures/transfer", asset="USDT", amount="1.0000001", type=1), -1111)
    refused(long_.signed("POST", "/sapi/v1/futures/transfer", asset="BTC", amount="1", type=1), -1130)
    refused(long_.signed("POST", "/sapi/v1/futures/transfer", asset="USDT", amount="99999999", type=1), -2010)
    assert client.perp_wallet(LONG) == wallet and client.balances(LONG) == spot
    position = client.perp_position(LONG, PERP)
    assert position is None or (position["leverage"], position["risk_tier"]) == (10, 1)


# ---- convert (the OTC desk) ----------------------------------------------------------------------
def test_a_convert_quote_is_accepted_once_and_settles_as_the_desk_says(desk, venue):
    client, trader = venue[0], desk["convert"]
    before = client.balances(CONVERT)
    quote = eventually(lambda: (r := trader.signed("POST", "/sapi/v1/convert/getQuote", fromAsset="USDT",
                                                   toAsset="BTC", toAmount="2")).status_code == 200 and r.json())
    assert quote, trader.signed("POST", "/sapi/v1/convert/getQuote", fromAsset="USDT", toAsset="BTC", toAmount="2").text
    rfq = client.otc_rfq(quote["quoteId"])["quote"]
    assert (quote["toAmount"], quote["fromAmount"]) == ("2.00000000", format_decimal(rfq["notional"], 6))
    assert quote["inverseRatio"] == format_decimal(rfq["price"], 6) and quote["validTimestamp"] > time.time() * 1000
    refused(desk["convert_read"].signed("POST", "/sapi/v1/convert/acceptQuote", quoteId=quote["quoteId"]), -2015)
    accepted = ok(trader.signed("POST", "/sapi/v1/convert/acceptQuote", quoteId=quote["quoteId"]))
    assert (accepted["orderId"], accepted["orderStatus"]) == (quote["quoteId"], "SUCCESS")
    after = client.balances(CONVERT)
    assert after["BTC"][0] == before["BTC"][0] + 2 * 10**8 and after["USDT"][0] == before["USDT"][0] - rfq["notional"]
    status = ok(trader.signed("GET", "/sapi/v1/convert/orderStatus", orderId=quote["quoteId"]))
    assert (status["orderStatus"], status["fromAsset"], status["toAsset"], status["toAmount"]) == \
        ("SUCCESS", "USDT", "BTC", "2.00000000")
    refused(trader.signed("POST", "/sapi/v1/convert/acceptQuote", quoteId=quote["quoteId"]), -2010)
    refused(desk["margin"].signed("GET", "/sapi/v1/convert/orderStatus", quoteId=quote["quoteId"]), -2013)
    assert client.balances(CONVERT) == after


def test_convert_refusals_carry_their_code_and_change_nothing(desk, venue):
    client, trader = venue[0], desk["convert"]
    before = client.balances(CONVERT)
    for params, code in ((dict(fromAsset="USDT", toAsset="BTC", toAmount="2", fromAmount="100000"), -1102),
                         (dict(fromAsset="USDT", toAsset="BTC"), -1102),
                         (dict(fromAsset="USDT", toAsset="BTC", toAmount="0.000000001"), -1111),
                         (dict(fromAsset="USDT", toAsset="DOGE", toAmount="2"), -1130),
                         (dict(fromAsset="BTC", toAsset="ETH", fromAmount="2"), -1130),
                         (dict(fromAsset="USDT", toAsset="BTC", toAmount="0.1"), -1013),
                         (dict(fromAsset="USDT", toAsset="BTC", toAmount="2", walletType="FUNDING"), -1130)):
        refused(trader.signed("POST", "/sapi/v1/convert/getQuote", **params), code)
    refused(trader.signed("POST", "/sapi/v1/convert/acceptQuote", quoteId="no-such-quote"), -2013)
    refused(trader.signed("GET", "/sapi/v1/convert/orderStatus"), -1102)
    assert client.balances(CONVERT) == before


# ---- withdrawals ----------------------------------------------------------------------------------
def test_a_withdrawal_is_held_at_once_shown_in_progress_and_answered_once_per_client_id(desk, venue):
    client, trader = venue[0], desk["withdraw"]
    before = client.balances(WITHDRAW)["USDT"][0]
    applied = ok(trader.signed("POST", "/sapi/v1/capital/withdraw/apply", coin="USDT", amount="100",
                               address="TQ-32005-cold", withdrawOrderId="w-32005-1"))
    assert client.balances(WITHDRAW)["USDT"][0] == before - 100 * 10**6
    again = ok(trader.signed("POST", "/sapi/v1/capital/withdraw/apply", coin="USDT", amount="100",
                             address="TQ-32005-cold", withdrawOrderId="w-32005-1"))
    assert again == applied and client.balances(WITHDRAW)["USDT"][0] == before - 100 * 10**6
    in_progress = ray.get(client.account_shard(WITHDRAW).withdrawals.remote(WITHDRAW))
    history = ok(trader.signed("GET", "/sapi/v1/capital/withdraw/history", coin="USDT"))
    assert [h["id"] for h in history] == [str(w["withdrawal"]) for w in in_progress]
    row = next(h for h in history if h["id"] == applied["id"])     # (hot holds no USDT here: it waits, approved)
    assert (row["amount"], row["address"], row["status"], row["state"]) == ("100.000000", "TQ-32005-cold", 4,
                                                                           "approved")
    assert ok(trader.signed("GET", "/sapi/v1/capital/withdraw/history", coin="BTC")) == []


def test_withdrawal_refusals_carry_their_code_and_change_nothing(desk, venue):
    client, trader = venue[0], desk["withdraw"]
    before = client.balances(WITHDRAW)
    apply = dict(coin="USDT", amount="10", address="TQ-32005-cold")
    refused(desk["no_withdraw"].signed("POST", "/sapi/v1/capital/withdraw/apply", **apply), -2015)
    for params, code in ((dict(amount="1.0000001"), -1111), (dict(amount="ten"), -1100), (dict(coin="DOGE"), -1130),
                         (dict(amount="99999999"), -2010), (dict(address=""), -1102),
                         (dict(address="x" * 129), -1130), (dict(addressTag="123"), -1130),
                         (dict(amount="-5"), -1130), (dict(withdrawOrderId="w" * 65), -1100),
                         (dict(withdrawOrderId="w-32005-1"), -2010)):       # the id of another withdrawal
        refused(trader.signed("POST", "/sapi/v1/capital/withdraw/apply", **{**apply, **params}), code)
    assert client.balances(WITHDRAW) == before
