"""Issue 11 through the public client and raw actor calls on real Ray: what a
hostile or careless client tried, and what it gets now. Each test fails on the
code before issue 11."""
from __future__ import annotations

import time

import ray

from actors.link.wire import pack, unpack_results
from exchange.messages.records import Fill, OpenAccount, OrderRejected, PlaceOrder
from exchange.core.reasons import Reason
from exchange.core.routing import shard_for
from tests.actors.conftest import accounts_on_shards, funded
from tests.actors.test_durability import shard_of, wait_for_restart


def raw_execute(client, shard: int, payload: bytes) -> list:
    return unpack_results(ray.get(client.handles.shards[shard].execute.remote(payload)))


def test_unencodable_ids_are_refused_and_everything_acknowledged_survives_a_shard_restart(client):
    account, _, _ = accounts_on_shards(client, 11_000)
    funded(client, account)
    assert client.deposit(account, "USDT", "5", request_id=2 ** 64).reason is Reason.INVALID_REQUEST_ID
    assert client.deposit(account, "USDT", "5", request_id="lone-\ud800").reason is Reason.INVALID_REQUEST_ID
    assert client.place_order(account, "BTC-USDT", "buy", "0.1", price="1000", client_order_id="bad\udc80").reason \
        is Reason.INVALID_CLIENT_ORDER_ID
    assert client.deposit(account, "USDT", "7", request_id="dep-ok").ok
    withdrawn = client.withdraw(account, "USDT", "3", request_id="wd-ok")
    resting = client.place_order(account, "BTC-USDT", "buy", "0.1", price="1000", client_order_id="keep-1")
    assert withdrawn.ok and resting.status == "open"
    before = client.balances(account), client.open_orders(account)
    shard = shard_of(client, account)
    started = ray.get(shard.stats.remote())["started_ns"]
    ray.kill(shard, no_restart=False)
    wait_for_restart(shard, started)
    assert (client.balances(account), client.open_orders(account)) == before
    assert client.withdraw(account, "USDT", "3", request_id="wd-ok").events == withdrawn.events   # not twice
    assert client.balances(account) == before[0]
    assert client.audit()["ok"]


def test_a_cancel_with_an_order_id_beyond_64_bits_is_refused_and_the_market_keeps_working(client):
    maker, taker, _ = accounts_on_shards(client, 12_000)
    funded(client, maker, taker)
    assert client.cancel_order(maker, "BTC-USDT", 2 ** 64).reason is Reason.VALUE_OUT_OF_RANGE
    raw = b'[[5, "raw-cancel", 0, %d, "BTC-USDT", 18446744073709551616, ""]]' % maker     # a CancelOrder
    (refused,) = raw_execute(client, shard_for(maker, client.config.shards), raw)
    assert type(refused[0]) is OrderRejected and refused[0].reason == Reason.FIELD_NOT_AN_INTEGER
    ask = client.place_order(maker, "BTC-USDT", "sell", "0.1", price="40000")
    bid = client.place_order(taker, "BTC-USDT", "buy", "0.1", price="40000")      # the link is not wedged
    assert ask.status == "open" and bid.status == "filled"


def test_fills_carry_the_shards_time_whatever_the_client_sends(client):
    maker, taker, _ = accounts_on_shards(client, 13_000)
    funded(client, maker, taker)
    before = time.time_ns()
    assert client.place_order(maker, "BTC-USDT", "sell", "0.1", price="41000").status == "open"
    order = client.order(taker, "BTC-USDT", "buy", "0.1", price="41000")._replace(ts_ns=2 ** 63 - 1)
    (events,) = client.execute([order])
    (fill,) = [e for e in events if type(e) is Fill]
    assert before < fill.ts_ns < time.time_ns()


def test_a_shard_refuses_an_account_routed_to_another_shard_on_a_raw_call(client):
    account = next(a for a in range(14_000, 15_000) if shard_for(a, client.config.shards) == 1)
    (refused,) = raw_execute(client, 0, pack([OpenAccount("wrong-shard", 0, account)]))
    assert refused == [OrderRejected("wrong-shard", account, Reason.WRONG_SHARD)]
    assert client.balances(account) is None
    assert client.open_account(account).ok                # its own shard takes it


def test_a_request_id_reused_with_another_body_is_refused(client):
    account, _, _ = accounts_on_shards(client, 16_000)
    funded(client, account)
    assert client.deposit(account, "USDT", "100", request_id="dep-1").ok
    assert client.deposit(account, "USDT", "999", request_id="dep-1").reason is Reason.REQUEST_ID_REUSED
    assert client.withdraw(account, "USDT", "100", request_id="dep-1").reason is Reason.REQUEST_ID_REUSED
    first = client.place_order(account, "BTC-USDT", "sell", "0.1", price="70000", request_id="ord-1")
    again = client.place_order(account, "BTC-USDT", "sell", "0.5", price="65000", request_id="ord-1")
    assert first.status == "open" and again.reason is Reason.REQUEST_ID_REUSED
    assert client.place_order(account, "BTC-USDT", "sell", "0.1", price="70000", request_id="ord-1").order_id \
        == first.order_id
    assert client.balances(account)["USDT"][0] == 1_000_100 * 10 ** 6
    assert len(client.open_orders(account)) == 1


def test_a_megabyte_client_order_id_is_refused_and_kept_nowhere(client):
    account, _, _ = accounts_on_shards(client, 17_000)
    funded(client, account)
    result = client.place_order(account, "BTC-USDT", "buy", "0.1", price="1000", client_order_id="x" * 1_000_000)
    assert result.reason is Reason.INVALID_CLIENT_ORDER_ID
    assert client.open_orders(account) == []
    stats = ray.get(shard_of(client, account).stats.remote())
    assert stats["open_orders"] >= 0


def test_a_raw_place_order_with_a_float_price_is_malformed_not_a_crash(client):
    account, _, _ = accounts_on_shards(client, 18_000)
    funded(client, account)
    order = PlaceOrder("raw-float", 0, account, "BTC-USDT", 1, 1, 1000.5, 10_000, 1, "", 0)
    (refused,) = raw_execute(client, shard_for(account, client.config.shards), pack([order]))
    assert refused[0].reason == Reason.FIELD_NOT_AN_INTEGER
