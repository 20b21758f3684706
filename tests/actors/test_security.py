"""Privileged inputs need capabilities; the client door carries client commands only
(issue 11, items 1 and 9). Real Ray; the module's actors are created with the
``operator`` fixture's keyring, so the tests can make privileged calls too."""
from __future__ import annotations

import pickle
import time

import pytest
import ray

from actors.capability import Capability, Keyring, Role, Scope
from actors.client.exchange_client import ExchangeClient
from actors.link.wire import WireError, pack, unpack_batch, unpack_commands, unpack_push, unpack_results
from exchange.messages.codec import encode
from exchange.messages.records import (CoverShortfall, Deposit, Fill, FinishLiquidation, LiquidationStep, PlaceOrder,
                               StartLiquidation, WriteOffDebt)
from exchange.core.reasons import Reason
from exchange.core.routing import shard_for
from tests.actors.conftest import accounts_on_shards, funded

USDT = 10**6
BTC = 10**8
PRICE = 50_000 * USDT


def shard_of(client: ExchangeClient, account: int):
    return client.handles.shards[shard_for(account, client.config.shards)]


def rejected_with(events: list) -> list:
    return [Reason(e.reason) for e in events if type(e).__name__ == "OrderRejected"]


def money(client: ExchangeClient, *accounts: int) -> dict:
    """Everything a refused privileged command must not move."""
    pools = {a: (p["cash"], p["borrowed"], p["principal"]) for a, p in client.lending_pools().items()}
    return {"balances": [client.balances(a) for a in accounts],
            "books": [client.margin_book(a) for a in accounts], "pools": pools, "fund": client.insurance_fund()}


@pytest.fixture(scope="module")
def borrower(operator, client):
    """A healthy cross margin book that owes USDT, and an attacker on another shard."""
    operator.set_index_component("BTC", "sim-alpha", PRICE, 1, time.time_ns())
    trader, attacker, supplier = accounts_on_shards(client, 31_000)
    maker = 31_999
    funded(client, supplier, maker)
    funded(client, trader, usdt="1000", btc="0.0001", eth="0.001")
    funded(client, attacker, usdt="2000", btc="0.0001", eth="0.001")
    assert client.supply(supplier, "USDT", "100000").ok
    assert client.enable_margin(trader, "L2", "3x").ok
    assert client.transfer_margin(trader, "USDT", "1000").ok
    assert client.place_order(maker, "BTC-USDT", "sell", "0.05", price="50000").ok
    assert client.margin_order(trader, "BTC-USDT", "buy", "0.05", price="50000", tif="ioc").status == "filled"
    book = client.margin_book(trader)
    assert book["debt"]["USDT"] > 0 and book["zone"] == 0
    # the attacker's bid that a forged liquidation would sell the book into (as low as the price band allows)
    assert client.place_order(attacker, "BTC-USDT", "buy", "0.05", price="25000").status == "open"
    return trader, attacker


def liquidator_commands(client: ExchangeClient, account: int) -> list:
    prices = tuple(1 for _ in client.config.asset_list)           # made-up prices
    rid = client.next_request_id
    return [StartLiquidation(rid(), 0, account, "", prices),
            LiquidationStep(rid(), 0, account, "", "BTC-USDT", 10, prices),
            CoverShortfall(rid(), 0, account, "", "USDT", 1_000_000 * USDT),
            FinishLiquidation(rid(), 0, account, ""),
            WriteOffDebt(rid(), 0, account, "", "USDT")]


def test_liquidator_commands_through_the_client_are_refused_not_permitted_and_change_nothing(client, borrower):
    trader, attacker = borrower
    before = money(client, trader, attacker)
    for target in (trader, attacker):
        for command, events in zip(liquidator_commands(client, target),
                                   client.execute(liquidator_commands(client, target))):
            assert rejected_with(events) == [Reason.NOT_PERMITTED], (type(command).__name__, events)
    assert money(client, trader, attacker) == before
    assert not client.margin_book(trader)["liquidating"]
    assert client.audit()["ok"]


def test_liquidator_commands_sent_raw_to_the_shard_are_refused(operator, client, borrower):
    trader, attacker = borrower
    shard = shard_of(client, trader)
    before = money(client, trader, attacker)
    answers = unpack_results(ray.get(shard.execute.remote(pack(liquidator_commands(client, trader)))))
    assert [rejected_with(events) for events in answers] == [[Reason.NOT_PERMITTED]] * 5
    for capability in (None, Capability(Role.LIQUIDATOR, b"\0" * 32), Keyring.mint().capability(Role.LIQUIDATOR),
                       operator.keyring.capability(Role.OPERATOR)):
        with pytest.raises(PermissionError):
            ray.get(shard.execute_as.remote(capability, pack(liquidator_commands(client, trader))))
    assert money(client, trader, attacker) == before
    assert client.audit()["ok"]


def test_index_components_need_the_operator_capability(operator, client):
    index = client.handles.index
    prices = ray.get(index.index_prices.remote())
    for capability in (None, "operator", Capability(Role.OPERATOR, b"x" * 32), operator.keyring.capability(Role.INDEX)):
        with pytest.raises(PermissionError):
            ray.get(index.set_component.remote(capability, "BTC", "sim-alpha", 19_800 * USDT, 1, time.time_ns()))
        with pytest.raises(PermissionError):
            ray.get(index.step.remote(capability, time.time_ns()))
    assert ray.get(index.index_prices.remote()) == prices
    with pytest.raises(PermissionError):        # shards take prices from the index only
        ray.get(client.handles.shards[0].set_index_prices.remote(None, {"BTC-USDT": 1}, {"BTC": 1}))
    with pytest.raises(PermissionError):
        ray.get(client.handles.liquidator.set_index_prices.remote(None, {"BTC": 1}))


def test_operator_powers_are_not_on_the_client(operator, client):
    assert not hasattr(client, "accrue_interest") and not hasattr(client, "_keyring")
    assert "Keyring" not in repr(vars(client))
    for call in (lambda: client.handles.lending.accrue.remote(None, time.time_ns() + 10**18),
                 lambda: client.handles.liquidator.deposit_fund.remote(None, "USDT", 10**12),
                 lambda: client.handles.liquidator.candidate.remote(None, 0, 1, "", 0),
                 lambda: client.handles.shards[0].arm_crash.remote(None, "shard.after_journal"),
                 lambda: client.handles.shards[0].snapshot_now.remote(None),
                 lambda: client.handles.markets["BTC-USDT"].submit.remote(None, 0, pack([]))):
        with pytest.raises(PermissionError):
            ray.get(call())
    fund = operator.deposit_insurance_fund("USDT", 5 * USDT)
    assert fund["deposited"]["USDT"] >= 5 * USDT
    assert "USDT" in operator.accrue_interest()
    assert operator.snapshot_now(client.handles.shards[0]) >= 0
    assert client.audit()["ok"]


def test_forged_push_with_a_fake_fill_is_refused_and_the_next_real_order_works(operator, client):
    seller, buyer, _ = accounts_on_shards(client, 32_000)
    funded(client, seller, buyer)
    shard = shard_of(client, buyer)
    before, applied = client.balances(buyer), ray.get(shard.applied_seq.remote("BTC-USDT"))
    fake = Fill("BTC-USDT", 10**9, 0, PRICE, BTC // 10, 1, buyer, 1, 2, seller, 0, 0)      # 0.1 BTC from nothing
    assert len(fake) == len(Fill._fields)
    entries = pack([(applied + 1, None, [fake])])
    for capability in (None, Capability(Role.MARKET, b"\0" * 32), Keyring.mint().capability(Role.MARKET),
                       operator.keyring.capability(Role.SHARD)):
        with pytest.raises(PermissionError):
            ray.get(shard.on_market_events.remote(capability, "BTC-USDT", entries, (None, None)))
    assert client.balances(buyer) == before
    assert ray.get(shard.applied_seq.remote("BTC-USDT")) == applied
    assert client.place_order(seller, "BTC-USDT", "sell", "0.1", price="45000").status == "open"
    assert client.place_order(buyer, "BTC-USDT", "buy", "0.1", price="45000").status == "filled"
    assert client.balances(buyer)["BTC"][0] == before["BTC"][0] + BTC // 10
    assert client.audit()["ok"]


def test_push_with_a_gap_in_the_entry_numbers_is_refused_whole(operator, client):
    seller, buyer, _ = accounts_on_shards(client, 33_000)
    funded(client, seller, buyer)
    shard = shard_of(client, buyer)
    market = operator.keyring.capability(Role.MARKET)
    before, applied = client.balances(buyer), ray.get(shard.applied_seq.remote("BTC-USDT"))
    fake = Fill("BTC-USDT", 10**9, 0, PRICE, BTC // 10, 1, buyer, 1, 2, seller, 0, 0)      # 0.1 BTC from nothing
    for entries in ([(applied + 2, None, [fake])],                        # skips one
                    [(applied + 1, None, []), (applied + 3, None, [fake])],   # a gap inside the push
                    [(applied + 10**6, None, [fake])]):                  # far ahead (drops genuine events)
        with pytest.raises(Exception, match="was due"):
            ray.get(shard.on_market_events.remote(market, "BTC-USDT", pack(entries), (None, None)))
    assert ray.get(shard.applied_seq.remote("BTC-USDT")) == applied
    assert client.balances(buyer) == before
    assert client.place_order(seller, "BTC-USDT", "sell", "0.1", price="45000").status == "open"
    assert client.place_order(buyer, "BTC-USDT", "buy", "0.1", price="45000").status == "filled"
    deadline = time.monotonic() + 10           # the answer leaves before the shard's record of it is durable
    while ray.get(shard.applied_seq.remote("BTC-USDT")) <= applied and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ray.get(shard.applied_seq.remote("BTC-USDT")) > applied
    assert client.audit()["ok"]


def test_scoped_client_acts_only_for_its_accounts(operator, client):
    mine, other, _ = accounts_on_shards(client, 34_000)
    funded(client, other)
    desk = operator.scoped([mine])
    assert desk.open_account(mine).ok and desk.deposit(mine, "USDT", "100").ok
    before = client.balances(other)
    assert desk.withdraw(other, "USDT", "1").reason == Reason.ACCOUNT_NOT_IN_SCOPE      # refused locally
    assert desk.place_order(other, "BTC-USDT", "sell", "0.1", price="45000").reason == Reason.ACCOUNT_NOT_IN_SCOPE
    shard = shard_of(client, other)
    raw = Deposit(client.next_request_id(), 0, other, "USDT", 100 * USDT)
    answers = unpack_results(ray.get(shard.execute_scoped.remote(desk.scope, pack([raw]))))
    assert rejected_with(answers[0]) == [Reason.ACCOUNT_NOT_IN_SCOPE]                 # refused by the shard
    for forged in (Scope(frozenset({other}), desk.scope.token), Scope(frozenset({other}), b"\0" * 32),
                   Keyring.mint().scope([other]), None):
        with pytest.raises(PermissionError):
            ray.get(shard.execute_scoped.remote(forged, pack([raw])))
    assert client.balances(other) == before
    assert client.balances(mine)["USDT"] == desk.balances(mine)["USDT"] == (100 * USDT, 0)
    with pytest.raises(PermissionError):          # reads too, locally (shard views are not authenticated)
        desk.balances(other)


def test_limit_order_at_price_zero_is_rejected_non_positive_price(client):
    account, _, _ = accounts_on_shards(client, 35_000)
    funded(client, account)
    before = client.balances(account)
    for price in ("0", 0, None):
        assert client.place_order(account, "BTC-USDT", "buy", "0.01", price=price).reason == Reason.NON_POSITIVE_PRICE
        assert client.margin_order(account, "BTC-USDT", "buy", "0.01", price=price).reason == \
            Reason.NON_POSITIVE_PRICE
    assert client.balances(account) == before
    assert client.order(account, "BTC-USDT", "buy", "0.01", price="1").order_type == 1      # limit by default


def test_pickle_payloads_are_refused_and_never_loaded(operator, client, tmp_path):
    account, _, _ = accounts_on_shards(client, 36_000)
    funded(client, account)
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    before = client.balances(account)
    shard = shard_of(client, account)
    deposit = pickle.dumps([Deposit(client.next_request_id(), 0, account, "USDT", 10**9)])
    for payload in (pickle.dumps(Exploit()), deposit):
        with pytest.raises(WireError):
            ray.get(shard.execute.remote(payload))
        with pytest.raises(WireError):
            ray.get(shard.execute_as.remote(operator.keyring.capability(Role.LIQUIDATOR), payload))
        with pytest.raises(WireError):
            ray.get(shard.on_market_events.remote(operator.keyring.capability(Role.MARKET), "BTC-USDT", payload,
                                                  (None, None)))
    with pytest.raises(WireError):
        ray.get(client.handles.markets["BTC-USDT"].submit.remote(operator.keyring.capability(Role.SHARD), 0,
                                                                 pickle.dumps(Exploit())))
    assert not marker.exists()
    assert client.balances(account) == before
    assert client.audit()["ok"]


def test_embedded_cluster_listens_on_loopback(client):
    assert {node["NodeManagerAddress"] for node in ray.nodes() if node["Alive"]} == {"127.0.0.1"}


# ---- the wire codec, without Ray ------------------------------------------------------

def test_wire_with_invalid_bytes_raises_wire_error():
    order = PlaceOrder(7, 0, 1, "BTC-USDT", 1, 1, PRICE, BTC, 1, "", 0)
    for data in (b"", b"{", b"\x80\x04]", pickle.dumps([order]), b'{"a": 1}', "[]", None):
        for decode in (unpack_results, unpack_batch, unpack_push):
            with pytest.raises(WireError):
                decode(data)
    for bad in (b"[[1, 2, [999, 1]]]", b"[[1, 2]]", b'[["1", null, [44]]]', b"[[1, null, [[44, 1]]]]"):
        with pytest.raises(WireError):
            unpack_push(bad)
    with pytest.raises(WireError):
        unpack_commands(b"{}")


def test_wire_command_batch_with_one_bad_element_keeps_the_others():
    order = PlaceOrder(7, 0, 1, "BTC-USDT", 1, 1, PRICE, BTC, 1, "", 0)
    good = encode(order)
    unknown, short, long = [999, 1], good[:-1], [*good, 0]
    packed = pack([order, unknown, short, long, "text", [1], None, order])
    assert unpack_commands(packed) == [order, None, None, None, None, None, None, order]
    assert unpack_commands(pack([order, ("tuple", "id")])) == [order, None]


def test_wire_round_trips_batches_and_pushes():
    order = PlaceOrder(("desk", 7), 0, 1, "BTC-USDT", 1, 1, PRICE, BTC, 1, "c-1", 0)
    fill = Fill("BTC-USDT", 3, 0, PRICE, BTC, 10, 1, 1, 11, 2, 5, 5)
    assert unpack_batch(pack([(1, (1, ("desk", 7)), order)])) == [(1, (1, ("desk", 7)), order)]
    assert unpack_push(pack([(4, None, [fill]), (5, (1, 9), [])])) == [(4, None, [fill]), (5, (1, 9), [])]
    assert unpack_results(pack([[fill], []])) == [[fill], []]
