"""Funding history, income and the complete withdrawal history over real HTTP against the
package's venue (``gateway/products/perp.py``, ``withdrawals.py``).

The venue holds no operator keyring and funds every 8 hours of real time, so a funding
settlement happens here only if the run crosses one: ``fundingRate`` is checked against
the market actor's own settlements, whatever they are (the settlements themselves, and
funding payments as income, are tested in ``tests/exchange/perp/test_funding_history.py``,
``tests/exchange/accounts/test_income.py`` and ``tests/actors/test_funding_history.py``).
Income here is what a perpetual trade brings: commissions, then realized PnL when a
position is reduced. Withdrawals: one approved, one queued for review, one rejected by a
rule (kept on file with its reason and end time); confirmed and failed ones need the
treasury's hot wallet or an operator, which ``tests/exchange/accounts/test_withdrawal_history.py``
drives through the Engine.

Accounts 36_001..36_005 are this module's."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest
import ray
import requests

from exchange.messages.records import CredentialChanged
from tests.gateway.conftest import Trader, eventually

LONG, SHORT, PAYER, LARGE, LOCKED = 36_001, 36_002, 36_003, 36_004, 36_005
PERP, SYMBOL = "BTC-USDT-PERP", "BTCUSDTPERP"


def ok(response: requests.Response):
    assert response.status_code == 200, response.text
    return response.json()


def refused(response: requests.Response, code: int) -> None:
    assert response.status_code in (400, 401), response.text
    assert response.json()["code"] == code, response.text


@pytest.fixture(scope="module")
def accounts(venue):
    """This module's accounts funded, a read+trade key for the traders, read+withdraw for the others."""
    client, keys, served = venue
    for account in (LONG, SHORT, PAYER, LARGE, LOCKED):
        assert client.open_account(account).ok
        for asset, amount in (("USDT", "1000000"), ("BTC", "1500")):
            assert client.deposit(account, asset, amount).ok
    traders = {account: Trader(served.url, *keys.create(account, ["read", "trade"])) for account in (LONG, SHORT)}
    traders |= {account: Trader(served.url, *keys.create(account, ["read", "withdraw"]))
                for account in (PAYER, LARGE, LOCKED)}
    return traders


# ---- funding rate history ------------------------------------------------------------------------
def test_the_funding_rate_history_is_the_markets_settlements(venue):
    client, _, served = venue
    settled = ray.get(client.handles.markets[PERP].funding_history.remote(None, None, 1000))
    rows = ok(requests.get(f"{served.url}/fapi/v1/fundingRate", params={"symbol": SYMBOL, "limit": 1000}, timeout=10))
    assert [(r["symbol"], r["fundingTime"]) for r in rows] == [(SYMBOL, ts // 1_000_000) for ts, _, _ in settled]
    for row, (_, rate, mark) in zip(rows, settled):
        assert row["fundingRate"] == f"{rate / 10**8:.8f}" and row["markPrice"] == f"{mark // 10}.{mark % 10}00000"
    assert ok(requests.get(f"{served.url}/fapi/v1/fundingRate", timeout=10)) == rows[-100:]     # every market
    late = ok(requests.get(f"{served.url}/fapi/v1/fundingRate", params={"startTime": 2**62 // 10**6}, timeout=10))
    assert late == []


def test_funding_rate_refusals_carry_their_code(venue):
    url = venue[2].url
    for params, code in (({"symbol": "BTCUSDT"}, -1121), ({"limit": 0}, -1100), ({"limit": 1001}, -1100),
                         ({"startTime": "yesterday"}, -1100), ({"endTime": "-5"}, -1100)):
        refused(requests.get(f"{url}/fapi/v1/fundingRate", params=params, timeout=10), code)


# ---- income ---------------------------------------------------------------------------------------
def trade(maker: Trader, taker: Trader, side: str, price: str, quantity: str) -> dict:
    """``maker`` rests ``side``, ``taker`` takes all of it."""
    assert ok(maker.signed("POST", "/fapi/v1/order", symbol=SYMBOL, side=side, type="LIMIT", timeInForce="GTC",
                           quantity=quantity, price=price))["status"] == "NEW"
    taken = ok(taker.signed("POST", "/fapi/v1/order", symbol=SYMBOL, side="BUY" if side == "SELL" else "SELL",
                            type="LIMIT", timeInForce="IOC", quantity=quantity, price=price))
    assert taken["status"] == "FILLED", taken
    return taken


def test_income_is_the_commissions_and_the_pnl_the_positions_carry(accounts, venue):
    client = venue[0]
    long_, short = accounts[LONG], accounts[SHORT]
    for trader in (long_, short):
        ok(trader.signed("POST", "/sapi/v1/futures/transfer", asset="USDT", amount="50000", type=1))
    mark = eventually(lambda: client.perp_prices(PERP)["mark"])
    opened, closed = f"{mark // 10}.0", f"{mark // 10 + 20}.0"          # then 20 USDT higher
    trade(short, long_, "SELL", opened, "0.02")                       # long 0.02
    trade(long_, short, "SELL", closed, "0.01")                       # the long sells half 20 USDT up
    views = {a: eventually(lambda a=a: (v := client.perp_position(a, PERP)) and v["size"] == (10**6 if a == LONG
                                                                                             else -10**6) and v)
             for a in (LONG, SHORT)}
    trades = {a: ok(t.signed("GET", "/fapi/v1/income", symbol=SYMBOL)) for a, t in ((LONG, long_), (SHORT, short))}
    for account, rows in trades.items():                # (FUNDING_FEE too, if the run crossed a funding time)
        assert all((r["symbol"], r["asset"]) == (SYMBOL, "USDT") for r in rows)
        total = {kind: sum(int(r["income"].replace(".", "")) for r in rows if r["incomeType"] == kind)
                 for kind in ("COMMISSION", "REALIZED_PNL", "FUNDING_FEE")}
        assert total == {"COMMISSION": -views[account]["fees"], "REALIZED_PNL": views[account]["realized"],
                         "FUNDING_FEE": -views[account]["funding"]}
        assert [r["tranId"] for r in rows] == sorted({r["tranId"] for r in rows})
        assert all(bool(r["tradeId"]) == (r["incomeType"] != "FUNDING_FEE") for r in rows)
        kept = ray.get(client.account_shard(account).income_history.remote(account, PERP, None, None, None, 1000))
        assert [r["tranId"] for r in rows] == [e["tran_id"] for e in kept]
    realized = [r for r in trades[LONG] if r["incomeType"] == "REALIZED_PNL"]
    assert [r["income"] for r in realized] == ["0.200000"]               # 0.01 BTC x 20 USDT
    assert sum(1 for r in trades[LONG] if r["incomeType"] == "COMMISSION") == 2
    long_rows = trades[LONG]
    assert ok(long_.signed("GET", "/fapi/v1/income", incomeType="REALIZED_PNL")) == realized
    assert ok(long_.signed("GET", "/fapi/v1/income", limit=1)) == long_rows[-1:]
    first = long_rows[0]["time"]
    assert ok(long_.signed("GET", "/fapi/v1/income", startTime=first, limit=1)) == long_rows[:1]
    assert ok(long_.signed("GET", "/fapi/v1/income", endTime=first - 1)) == []
    assert ok(long_.signed("GET", "/fapi/v1/income", incomeType="FUNDING_FEE")) == \
        [r for r in long_rows if r["incomeType"] == "FUNDING_FEE"]
    assert ok(accounts[PAYER].signed("GET", "/fapi/v1/income")) == []            # nobody else's


def test_income_refusals_carry_their_code(accounts):
    trader = accounts[LONG]
    for params, code in ((dict(symbol="BTCUSDT"), -1121), (dict(incomeType="TRANSFER"), -1130),
                         (dict(limit=0), -1100), (dict(limit=1001), -1100), (dict(startTime="x"), -1100)):
        refused(trader.signed("GET", "/fapi/v1/income", **params), code)
    refused(requests.get(f"{trader.url}/fapi/v1/income", timeout=10), -2015)      # unsigned: no key


# ---- withdrawal history ---------------------------------------------------------------------------
def utc(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc).timestamp())


def test_the_withdrawal_history_keeps_approved_queued_and_rejected_ones(accounts, venue):
    client = venue[0]
    payer, large, locked = accounts[PAYER], accounts[LARGE], accounts[LOCKED]
    started = int(time.time())
    first = ok(payer.signed("POST", "/sapi/v1/capital/withdraw/apply", coin="USDT", amount="100",
                            address="TQ-36003", withdrawOrderId="w-36003-1"))
    second = ok(payer.signed("POST", "/sapi/v1/capital/withdraw/apply", coin="BTC", amount="0.5", address="bc1q-36003"))
    queued = ok(large.signed("POST", "/sapi/v1/capital/withdraw/apply", coin="BTC", amount="1200",
                             address="bc1q-36004"))                      # over the large-withdrawal line: review
    assert client.execute([CredentialChanged(client.next_request_id(), 0, LOCKED)])[0]
    refused(locked.signed("POST", "/sapi/v1/capital/withdraw/apply", coin="USDT", amount="5", address="TQ-36005",
                          withdrawOrderId="w-36005-1"), -2010)             # within 24 h of a credential change

    rows = ok(payer.signed("GET", "/sapi/v1/capital/withdraw/history"))
    assert [r["id"] for r in rows] == [second["id"], first["id"]]         # newest first
    usdt, btc = rows[1], rows[0]
    assert (usdt["coin"], usdt["amount"], usdt["address"], usdt["status"], usdt["withdrawOrderId"]) == \
        ("USDT", "100.000000", "TQ-36003", 4, "w-36003-1")
    assert "withdrawOrderId" not in btc and "completeTime" not in btc and btc["amount"] == "0.50000000"
    assert started <= utc(usdt["applyTime"]) <= time.time() and usdt["transactionFee"] == "0.000000"
    assert ok(payer.signed("GET", "/sapi/v1/capital/withdraw/history", coin="BTC")) == [btc]
    assert ok(payer.signed("GET", "/sapi/v1/capital/withdraw/history", withdrawOrderId="w-36003-1")) == [usdt]
    assert ok(payer.signed("GET", "/sapi/v1/capital/withdraw/history", idList=first["id"])) == [usdt]
    assert ok(payer.signed("GET", "/sapi/v1/capital/withdraw/history", offset=1, limit=1)) == [usdt]
    assert ok(payer.signed("GET", "/sapi/v1/capital/withdraw/history", status=6)) == []
    assert ok(payer.signed("GET", "/sapi/v1/capital/withdraw/history", endTime=started * 1000 - 1)) == []

    review, = ok(large.signed("GET", "/sapi/v1/capital/withdraw/history"))
    assert (review["id"], review["status"], review["state"]) == (queued["id"], 2, "queued")
    assert review["reviewUntil"] > time.time() * 1000 + 23 * 3600 * 1000      # 24 h of review

    rejected, = ok(locked.signed("GET", "/sapi/v1/capital/withdraw/history", status=3))
    assert (rejected["status"], rejected["info"], rejected["withdrawOrderId"]) == (3, "CREDENTIAL_CHANGED",
                                                                                     "w-36005-1")
    assert rejected["completeTime"] == rejected["applyTime"]              # refused when asked: over at once
    in_progress = ray.get(client.account_shard(LOCKED).withdrawals.remote(LOCKED))
    assert in_progress == []                                              # the cashier's view: nothing pending


def test_withdrawal_history_refusals_carry_their_code(accounts):
    trader = accounts[PAYER]
    for params, code in ((dict(coin="DOGE"), -1130), (dict(limit=0), -1100), (dict(limit=1001), -1100),
                         (dict(status="done"), -1100), (dict(offset="-1"), -1100)):
        refused(trader.signed("GET", "/sapi/v1/capital/withdraw/history", **params), code)
