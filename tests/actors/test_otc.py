"""The OTC desk's request-for-quote front end on real Ray actors (issue 16, first part): a
firm quote priced from the index actor's prices, signed by the desk (a tampered copy fails
the client's check), accepted once, refused with its reason, expiring, and rebuilt after
the desk actor's process dies (its journal: the same quotes, signatures included)."""
from __future__ import annotations

import time

import pytest
import ray

from exchange.otc.signing import verify
from tests.actors.conftest import eventually, funded

CLIENT = 7_201


def stocked(operator, client) -> int:
    """Index prices, the desk's account funded (its inventory), the client funded; the desk synced."""
    for asset, usdt in (("BTC", 50_000), ("ETH", 2_500)):
        operator.set_index_component(asset, "test-feed", usdt * 10**6, 1, time.time_ns())
    desk = int(client.config.sections["otc"]["desk_account"])
    if client.balances(desk) is None:
        funded(client, desk, usdt="50000000", btc="500", eth="5000")
        funded(client, CLIENT)
    assert eventually(lambda: client.otc_view()["inventory"].get("BTC", 0) >= 500 * 10**8), client.otc_view()
    return desk


def test_a_quote_is_signed_accepted_once_and_refusals_name_their_reason(operator, client):
    stocked(operator, client)
    answer = eventually(lambda: (a := client.otc_inquire(CLIENT, "BTC-USDT", "buy", quantity="2"))["ok"] and a)
    assert answer and client.otc_verify(answer)
    quote = answer["quote"]
    assert set(quote["breakdown"]) == {"size", "volatility", "liquidity", "payment"}
    assert quote["spread_bps"] == sum(quote["breakdown"].values()) and quote["price"] > quote["index"]
    assert not verify(answer["public_key"], {**quote, "price": quote["price"] - 1}, answer["signature"])
    accepted = client.otc_accept(CLIENT, quote["id"])
    assert (accepted["ok"], accepted["state"]) == (True, "accepted")
    assert client.otc_accept(CLIENT, quote["id"])["reason"] == "QUOTE_ALREADY_ACCEPTED"
    assert client.otc_accept(CLIENT + 1, quote["id"])["reason"] == "UNKNOWN_QUOTE"
    assert client.otc_view()["locked"]["BTC"] == 2 * 10**8
    for kwargs, reason in ((dict(quantity="0.1"), "OTC_BELOW_MINIMUM"), (dict(quantity="1000"), "OTC_ABOVE_MAXIMUM"),
                           (dict(quantity="2", method="cash"), "UNKNOWN_PAYMENT_METHOD")):
        assert client.otc_inquire(CLIENT, "BTC-USDT", "buy", **kwargs)["reason"] == reason
    assert client.otc_inquire(CLIENT, "DOGE-USDT", "buy", quantity=2 * 10**8)["reason"] == "OTC_UNKNOWN_PAIR"
    assert client.otc_inquire(CLIENT, "DOGE-USDT", "buy", quantity="2")["reason"] == "MALFORMED_COMMAND"   # no grid
    assert client.otc_inquire(CLIENT, "BTC-USDT", "buy", quantity="2", method="x" * 10_000)["reason"] == \
        "MALFORMED_COMMAND"                                                   # refused before the journal


def test_a_quote_not_accepted_in_its_time_expires(operator, client):
    stocked(operator, client)
    quote = client.otc_inquire(CLIENT, "ETH-USDT", "sell", quantity="40")["quote"]
    assert eventually(lambda: ray.get(operator.handles.otc.rfq.remote(quote["id"]))["state"] == "expired", 20)
    assert client.otc_accept(CLIENT, quote["id"])["reason"] == "QUOTE_EXPIRED"


def test_the_bank_feed_pays_a_fiat_trade_and_a_third_party_payment_is_refunded(operator, client):
    stocked(operator, client)
    buyer = 9_100_001                                       # a verified client of config/default.toml
    if client.balances(buyer) is None:
        funded(client, buyer)
    quote = client.otc_inquire(buyer, "BTC-USDT", "buy", quantity="2", method="bank-usd-intl")["quote"]
    assert client.otc_accept(buyer, quote["id"])["state"] == "accepted"
    otc, feed = operator.handles.otc, operator._capability      # the bank feed holds the operator capability
    third = ray.get(otc.bank_payment.remote(feed, quote["id"], quote["notional"], "Someone Else Ltd", "wire-1"))
    assert third["reason"] == "THIRD_PARTY_PAYMENT"
    paid = ray.get(otc.bank_payment.remote(feed, quote["id"], quote["notional"], "northwind  CAPITAL ltd", "wire-2"))
    assert paid == {"ok": True, "state": "paid", "paid": quote["notional"]}
    assert ray.get(otc.refunds.remote()) == [[quote["id"], quote["notional"], "wire-1", "third-party payer"]]
    with pytest.raises(ray.exceptions.RayTaskError):         # a client's own "receipt" changes nothing
        ray.get(otc.bank_payment.remote(None, quote["id"], 1, "Northwind Capital Ltd", "receipt.png"))
    assert client.otc_inquire(CLIENT, "BTC-USDT", "buy", quantity="2", method="bank-usd")["reason"] == \
        "OTC_CLIENT_NOT_VERIFIED"


def test_the_desk_rebuilds_its_quotes_from_its_journal_after_its_process_dies(operator, client):
    stocked(operator, client)
    answer = client.otc_inquire(CLIENT, "BTC-USDT", "sell", notional="120000")
    client.otc_accept(CLIENT, answer["quote"]["id"])
    otc = operator.handles.otc
    before = ray.get(otc.rfq.remote(answer["quote"]["id"]))
    ray.kill(otc, no_restart=False)
    after = eventually(lambda: _rfq(otc, answer["quote"]["id"]), 60)
    assert after == before and after["state"] == "accepted"             # (the module's last test: the actor
                                                                         # restarted under it)
    assert verify(after["public_key"], after["quote"], after["signature"])


def _rfq(otc, rfq_id: str):
    try:
        return ray.get(otc.rfq.remote(rfq_id), timeout=5)
    except Exception:          # restarting
        return None
