"""The OTC desk on real Ray actors (issue 16's "must show"): full happy paths for crypto and
fiat payment; quote expiry; double acceptance; acceptance after expiry; underpayment then
timeout with a refund; a third-party payer refused and refunded; credit within and beyond
the limit; an overdue credit trade blocking the next; a delivery above the threshold held
for an operator; the inventory hedge placed on the book; the desk rebuilt from its journal
after its process dies. Ledger conservation (shards + pools + funds + the desk's transit)
is checked after each.

The module runs its own exchange on the default config with short clocks: a 4 s payment
window, an 8 s credit term, deliveries above 5 BTC approved by an operator, and the BTC
inventory's ceiling 6 BTC above what the desk is funded with."""
from __future__ import annotations

import time

import pytest
import ray

from actors import bootstrap
from actors.capability import Keyring
from actors.client.operator import OperatorClient
from exchange.config import DEFAULT_CONFIG_PATH
from exchange.otc.signing import verify
from tests.actors.conftest import eventually, funded, settle

CLIENT = 7_201
NORTHWIND = 9_100_001          # a verified client of config/default.toml, with a 2,000,000 USDT credit limit
MAKER = 7_301
SHORT_CLOCKS = {"payment_window_s = 1800": "payment_window_s = 4", "term_s = 86400": "term_s = 8",
                'BTC = "50"': 'BTC = "5"'}


@pytest.fixture(scope="module")
def operator(tmp_path_factory):
    text = DEFAULT_CONFIG_PATH.read_text()
    for old, new in SHORT_CLOCKS.items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path_factory.mktemp("config") / "otc.toml"
    path.write_text(text)
    bootstrap.init_ray(num_cpus=2)
    keyring = Keyring.mint()
    exchange = OperatorClient(bootstrap.create_actors(path, data_dir=tmp_path_factory.mktemp("data"),
                                                      keyring=keyring), keyring)
    yield exchange
    bootstrap.destroy_actors(exchange.handles)
    ray.shutdown()


@pytest.fixture(scope="module")
def client(operator):
    return operator.client


def stocked(operator, client) -> int:
    """Index prices, the desk's account funded (its inventory), the clients funded; the desk synced."""
    for asset, usdt in (("BTC", 50_000), ("ETH", 2_500)):
        operator.set_index_component(asset, "test-feed", usdt * 10**6, 1, time.time_ns())
    desk = int(client.config.sections["otc"]["desk_account"])
    if client.balances(desk) is None:
        funded(client, desk, usdt="50000000", btc="500", eth="5000")
        funded(client, CLIENT, NORTHWIND, MAKER)
    assert eventually(lambda: client.otc_view()["inventory"].get("BTC", 0) > 0), client.otc_view()
    return desk


def conserved(client) -> None:
    audit = settle(client)
    assert audit["consistent"] and audit["ok"], audit


def available(client, account: int, asset: str) -> int:
    return client.balances(account)[asset][0]


def quoted(client, account: int, side: str, **kwargs) -> dict:
    answer = eventually(lambda: (a := client.otc_inquire(account, "BTC-USDT", side, **kwargs))["ok"] and a)
    assert answer and client.otc_verify(answer), answer
    return answer["quote"]


def test_a_crypto_trade_settles_at_acceptance_and_a_quote_is_accepted_once(operator, client):
    desk = stocked(operator, client)
    btc, usdt, desk_btc = available(client, CLIENT, "BTC"), available(client, CLIENT, "USDT"), \
        available(client, desk, "BTC")
    quote = quoted(client, CLIENT, "buy", quantity="2")
    assert set(quote["breakdown"]) == {"size", "volatility", "liquidity", "payment"}
    assert quote["spread_bps"] == sum(quote["breakdown"].values()) and quote["price"] > quote["index"]
    accepted = client.otc_accept(CLIENT, quote["id"])
    assert (accepted["ok"], accepted["state"]) == (True, "settled"), accepted
    assert client.otc_accept(CLIENT, quote["id"])["reason"] == "QUOTE_ALREADY_ACCEPTED"
    assert client.otc_accept(CLIENT + 1, quote["id"])["reason"] == "UNKNOWN_QUOTE"
    assert available(client, CLIENT, "BTC") == btc + 2 * 10**8
    assert available(client, CLIENT, "USDT") == usdt - quote["notional"]
    assert available(client, desk, "BTC") == desk_btc - 2 * 10**8
    history = [e["what"] for e in client.otc_rfq(quote["id"])["history"]]   # every transition, on the RFQ
    assert history[:2] == ["quoted", "accepted"] and history[-1] == "settled" and "deliver" in history
    row = client.otc_blotter(operator._capability)[-1]
    assert (row["rfq"], row["income"]) == (quote["id"], quote["notional"] - 2 * quote["index"])
    with pytest.raises(ray.exceptions.RayTaskError):          # the blotter is private
        client.otc_blotter(None)
    for kwargs, reason in ((dict(quantity="0.1"), "OTC_BELOW_MINIMUM"), (dict(quantity="1000"), "OTC_ABOVE_MAXIMUM"),
                           (dict(quantity="2", method="cash"), "UNKNOWN_PAYMENT_METHOD")):
        assert client.otc_inquire(CLIENT, "BTC-USDT", "buy", **kwargs)["reason"] == reason
    assert client.otc_inquire(CLIENT + 99, "BTC-USDT", "buy", quantity="2")["reason"] == "UNKNOWN_ACCOUNT"
    settled = client.otc_rfq(quote["id"])
    assert client.otc_inquire(CLIENT, "BTC-USDT", "buy", quantity="2", settlement="t+2")["reason"] == \
        "MALFORMED_COMMAND"
    assert client.otc_pay(CLIENT, "q" * 100)["reason"] == "MALFORMED_COMMAND"
    assert client.otc_pay(CLIENT, quote["id"])["reason"] == "OTC_NOT_YOURS_TO_PAY"         # not a credit trade
    assert client.otc_approve(operator._capability, quote["id"], "tina", "ok")["reason"] == \
        "OTC_NOT_AWAITING_APPROVAL"
    assert client.otc_rfq(quote["id"]) == settled                              # refused: nothing moved
    assert client.otc_inquire(CLIENT, "BTC-USDT", "buy", quantity="2", method="x" * 10_000)["reason"] == \
        "MALFORMED_COMMAND"                                                   # refused before the journal
    conserved(client)


def test_a_quote_not_accepted_in_its_time_expires_and_cannot_be_accepted_after(operator, client):
    stocked(operator, client)
    quote = client.otc_inquire(CLIENT, "ETH-USDT", "sell", quantity="40")["quote"]
    assert eventually(lambda: client.otc_rfq(quote["id"])["state"] == "expired", 20)
    assert client.otc_accept(CLIENT, quote["id"])["reason"] == "QUOTE_EXPIRED"
    conserved(client)


def test_a_fiat_trade_is_delivered_once_paid_from_the_verified_name_and_a_third_party_is_refunded(operator, client):
    stocked(operator, client)
    btc = available(client, NORTHWIND, "BTC")
    quote = quoted(client, NORTHWIND, "buy", quantity="2", method="bank-usd-intl")
    assert client.otc_accept(NORTHWIND, quote["id"])["state"] == "accepted"
    otc, feed = operator.handles.otc, operator._capability      # the bank feed holds the operator capability
    third = ray.get(otc.bank_payment.remote(feed, quote["id"], quote["notional"], "Someone Else Ltd", "wire-1"))
    assert third["reason"] == "THIRD_PARTY_PAYMENT"
    paid = ray.get(otc.bank_payment.remote(feed, quote["id"], quote["notional"], "northwind  CAPITAL ltd", "wire-2"))
    assert paid["ok"] and paid["paid"] == quote["notional"]
    assert eventually(lambda: client.otc_rfq(quote["id"])["state"] == "settled")
    assert available(client, NORTHWIND, "BTC") == btc + 2 * 10**8
    assert [quote["id"], quote["notional"], "wire-1", "third-party payer"] in ray.get(otc.refunds.remote())
    with pytest.raises(ray.exceptions.RayTaskError):         # a client's own "receipt" changes nothing
        ray.get(otc.bank_payment.remote(None, quote["id"], 1, "Northwind Capital Ltd", "receipt.png"))
    assert client.otc_inquire(CLIENT, "BTC-USDT", "buy", quantity="2", method="bank-usd")["reason"] == \
        "OTC_CLIENT_NOT_VERIFIED"
    conserved(client)


def test_an_underpaid_fiat_trade_is_cancelled_at_its_deadline_its_lock_returned_and_its_part_refunded(
        operator, client):
    desk = stocked(operator, client)
    quote = quoted(client, NORTHWIND, "buy", quantity="1", method="bank-usd")
    assert client.otc_accept(NORTHWIND, quote["id"])["state"] == "accepted"
    locked = available(client, desk, "BTC")
    otc, feed = operator.handles.otc, operator._capability
    part = ray.get(otc.bank_payment.remote(feed, quote["id"], quote["notional"] // 2, "Northwind Capital Ltd", "w-3"))
    assert (part["state"], part["paid"]) == ("accepted", quote["notional"] // 2)
    assert eventually(lambda: client.otc_rfq(quote["id"])["state"] == "cancelled", 20)
    assert eventually(lambda: available(client, desk, "BTC") == locked + 10**8)          # the lock came back
    assert [quote["id"], quote["notional"] // 2, "", "payment window ran out"] in ray.get(otc.refunds.remote())
    conserved(client)


def test_credit_delivers_first_within_the_limit_and_is_refused_beyond_it(operator, client):
    stocked(operator, client)
    btc, usdt = available(client, NORTHWIND, "BTC"), available(client, NORTHWIND, "USDT")
    assert client.otc_inquire(CLIENT, "BTC-USDT", "buy", quantity="2", settlement="t+1")["reason"] == \
        "OTC_CREDIT_NOT_APPROVED"
    assert client.otc_inquire(NORTHWIND, "BTC-USDT", "buy", quantity="45", settlement="t+1")["reason"] == \
        "OTC_CREDIT_LIMIT"                                    # ~2.25 M of a 2 M limit
    quote = quoted(client, NORTHWIND, "buy", quantity="4", settlement="t+1")
    assert quote["settlement"] == "t+1"
    accepted = client.otc_accept(NORTHWIND, quote["id"])
    assert eventually(lambda: client.otc_rfq(quote["id"])["state"] == "delivered"), accepted
    assert available(client, NORTHWIND, "BTC") == btc + 4 * 10**8
    assert available(client, NORTHWIND, "USDT") == usdt                      # not paid yet
    (book,) = client.otc_credit(operator._capability)
    assert book["exposure"] == quote["notional"]
    conserved(client)
    client.otc_pay(NORTHWIND, quote["id"])
    assert eventually(lambda: client.otc_rfq(quote["id"])["state"] == "settled")
    assert available(client, NORTHWIND, "USDT") == usdt - quote["notional"]
    assert client.otc_credit(operator._capability)[0]["exposure"] == 0
    conserved(client)


def test_an_overdue_credit_trade_blocks_the_next_until_it_is_paid(operator, client):
    stocked(operator, client)
    quote = quoted(client, NORTHWIND, "buy", quantity="1", settlement="t+1")
    client.otc_accept(NORTHWIND, quote["id"])
    assert eventually(lambda: client.otc_rfq(quote["id"])["overdue"], 20)             # 8 s term, unpaid
    assert client.otc_credit(operator._capability)[0]["overdue"] == [quote["id"]]
    assert client.otc_inquire(NORTHWIND, "BTC-USDT", "buy", quantity="1", settlement="t+1")["reason"] == \
        "OTC_CREDIT_OVERDUE"
    assert client.otc_inquire(NORTHWIND, "BTC-USDT", "buy", quantity="1")["ok"]          # T+0 still quoted
    trail = [e["what"] for e in client.otc_trail(operator._capability, quote["id"])]
    assert trail[:2] == ["quoted", "accepted"] and "credit overdue" in trail
    client.otc_pay(NORTHWIND, quote["id"])
    assert eventually(lambda: client.otc_rfq(quote["id"])["state"] == "settled")
    assert client.otc_inquire(NORTHWIND, "BTC-USDT", "buy", quantity="1", settlement="t+1")["ok"]
    conserved(client)


def test_a_delivery_above_the_threshold_waits_for_an_operator(operator, client):
    stocked(operator, client)
    btc = available(client, CLIENT, "BTC")
    quote = quoted(client, CLIENT, "buy", quantity="6")
    assert client.otc_accept(CLIENT, quote["id"])["state"] == "paid"                    # paid, held back
    assert available(client, CLIENT, "BTC") == btc
    conserved(client)                                       # (the 6 BTC and the payment are in transit)
    assert client.otc_approve(operator._capability, quote["id"], "tina", "")["reason"] == "MALFORMED_COMMAND"
    approved = client.otc_approve(operator._capability, quote["id"], "tina", "cold wallet signed")
    assert approved["ok"], approved
    assert eventually(lambda: client.otc_rfq(quote["id"])["state"] == "settled")
    assert available(client, CLIENT, "BTC") == btc + 6 * 10**8
    conserved(client)


def test_inventory_past_its_ceiling_is_hedged_on_the_book_from_the_desk_s_account(operator, client):
    desk = stocked(operator, client)
    assert client.place_order(MAKER, "BTC-USDT", "buy", "5", price="50000").ok            # a bid to hedge into
    before, ceiling = available(client, desk, "BTC"), 506 * 10**8
    bought = ceiling - before + 2 * 10**8                   # the desk buys enough to pass its ceiling by 2 BTC
    quote = quoted(client, CLIENT, "sell", quantity=bought)
    assert client.otc_accept(CLIENT, quote["id"])["state"] == "settled"
    hedges = eventually(lambda: [h for h in client.otc_view()["hedges"] if h["filled"] > 0], 30)
    assert hedges and hedges[0]["side"] == "sell" and hedges[0]["filled"] == 2 * 10**8
    assert eventually(lambda: available(client, desk, "BTC") == ceiling)          # sold on the book
    conserved(client)


def test_the_desk_rebuilds_its_quotes_from_its_journal_after_its_process_dies(operator, client):
    stocked(operator, client)
    answer = client.otc_inquire(CLIENT, "BTC-USDT", "sell", notional="120000")
    client.otc_accept(CLIENT, answer["quote"]["id"])
    otc = operator.handles.otc
    before = ray.get(otc.rfq.remote(answer["quote"]["id"]))
    ray.kill(otc, no_restart=False)
    after = eventually(lambda: _rfq(otc, answer["quote"]["id"]), 60)
    assert after == before and after["state"] == "settled"              # (the module's last test: the actor
                                                                         # restarted under it)
    assert verify(after["public_key"], after["quote"], after["signature"])
    assert eventually(lambda: _audit(client), 30)["ok"]


def _audit(client):
    try:
        audit = client.audit()
    except ray.exceptions.ActorUnavailableError:        # a handle's first calls after the restart
        return None
    return audit if audit["consistent"] else None


def _rfq(otc, rfq_id: str):
    try:
        return ray.get(otc.rfq.remote(rfq_id), timeout=5)
    except Exception:          # restarting
        return None
