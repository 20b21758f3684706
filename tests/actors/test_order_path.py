"""The order path on real Ray actors: shard -> market -> shards."""
from __future__ import annotations

import asyncio
import random

import ray

from actors.capability import Role
from actors.link.wire import pack
from exchange.messages.records import CancelOrder, OrderRejected, PlaceOrder
from exchange.core.money import mul_div_ceil
from exchange.core.reasons import Reason
from exchange.core.routing import shard_for
from tests.actors.conftest import accounts_on_shards, funded, settle

BTC = 10**8          # satoshi per BTC
USDT = 10**6         # minor units per USDT


def test_cross_shard_fill_with_both_sides_settles_each_exactly_once(client, operator):
    seller, buyer, _ = accounts_on_shards(client, 100)
    funded(client, seller, buyer)
    before_seller, before_buyer = client.balances(seller), client.balances(buyer)
    ask = client.place_order(seller, "BTC-USDT", "sell", "0.5", price="40000.00")
    assert ask.status == "open"
    bid = client.place_order(buyer, "BTC-USDT", "buy", "0.2", price="40100.00")
    assert bid.status == "filled" and len(bid.fills) == 1
    fill = bid.fills[0]
    notional = 40_000 * USDT * 2 // 10           # 0.2 BTC at 40,000 USDT
    fee = mul_div_ceil(notional, 1000, 1_000_000)  # regular tier: 0.10% both sides
    assert (fill.price, fill.quantity, fill.taker_fee, fill.maker_fee) == (40_000 * USDT, BTC // 5, fee, fee)
    settle(client)                     # the seller's shard settles from its push, after the buyer's answer
    after_seller, after_buyer = client.balances(seller), client.balances(buyer)
    assert after_buyer["BTC"] == (before_buyer["BTC"][0] + BTC // 5, 0)
    assert after_buyer["USDT"] == (before_buyer["USDT"][0] - notional - fee, 0)
    assert after_seller["BTC"] == (before_seller["BTC"][0] - BTC // 2, BTC * 3 // 10)
    assert after_seller["USDT"] == (before_seller["USDT"][0] + notional - fee, 0)

    # Deliver the market's last push to the seller's shard again (its entry number): nothing changes.
    shard = client.handles.shards[shard_for(seller, client.config.shards)]
    entries = [(ray.get(shard.applied_seq.remote("BTC-USDT")), None, [fill])]
    applied = ray.get(shard.audit.remote())["applied"]["BTC-USDT"]
    market = operator.keyring.capability(Role.MARKET)
    ray.get(shard.on_market_events.remote(market, "BTC-USDT", pack(entries), (None, None)))
    assert client.balances(seller) == after_seller
    assert ray.get(shard.audit.remote())["applied"]["BTC-USDT"] == applied
    assert client.cancel_order(seller, "BTC-USDT", ask.order_id).status == "cancelled"
    assert client.audit()["ok"]


def test_account_with_foreign_order_cannot_cancel_or_amend_it(client):
    owner, other_shard, same_shard = accounts_on_shards(client, 200)
    funded(client, owner, other_shard, same_shard)
    order = client.place_order(owner, "ETH-USDT", "buy", "1.000", price="2000.00")
    assert order.status == "open"
    for intruder in (other_shard, same_shard):
        balances = client.balances(owner)
        cancel = client.cancel_order(intruder, "ETH-USDT", order.order_id)
        amend = client.amend_order(intruder, "ETH-USDT", order.order_id, price="1999.00")
        assert (cancel.status, cancel.reason) == ("rejected", Reason.NOT_OWNER)
        assert (amend.status, amend.reason) == ("rejected", Reason.NOT_OWNER)
        assert client.balances(owner) == balances
        assert client.get_order(owner, order.order_id)["remaining"] == 10**8
    book = client.order_book("ETH-USDT")
    assert (2000 * USDT, 10**8, 1) in book["bids"]
    assert client.cancel_order(owner, "ETH-USDT", order.order_id).status == "cancelled"


def test_bad_order_with_unknown_market_or_account_is_rejected_and_changes_nothing(client):
    account, _, _ = accounts_on_shards(client, 300)
    funded(client, account)
    balances, book = client.balances(account), client.order_book("BTC-USDT")
    cases = [
        (client.place_order(account, "DOGE-USDT", "buy", 100, price=1), Reason.UNKNOWN_MARKET),
        (client.place_order(999_999_999, "BTC-USDT", "buy", "0.1", price="1.00"), Reason.UNKNOWN_ACCOUNT),
        (client.place_order(account, "BTC-USDT", "buy", "0.1", price="50000.001"), Reason.OFF_TICK_PRICE),
        (client.place_order(account, "BTC-USDT", "buy", "0.00005", price="50000.00"), Reason.OFF_LOT_QUANTITY),
        (client.place_order(account, "BTC-USDT", "buy", "90", price="50000.00"), Reason.INSUFFICIENT_BALANCE),
        (client.place_order(account, "BTC-USDT", "buy", 0, price="50000.00"), Reason.NON_POSITIVE_QUANTITY),
    ]
    for result, reason in cases:
        assert (result.ok, result.reason) == (False, reason)
    assert client.withdraw(account, "USDT", "99999999").reason == Reason.INSUFFICIENT_BALANCE
    assert client.deposit(999_999_999, "USDT", "1").reason == Reason.UNKNOWN_ACCOUNT
    assert client.balances(account) == balances
    assert client.order_book("BTC-USDT")["bids"] == book["bids"]


def test_order_rejected_by_market_with_post_only_crossing_releases_its_hold(client):
    maker, taker, _ = accounts_on_shards(client, 400)
    funded(client, maker, taker)
    ask = client.place_order(maker, "BTC-USDT", "sell", "0.1", price="45000.00")
    balances = client.balances(taker)
    crossing = client.place_order(taker, "BTC-USDT", "buy", "0.1", price="45000.00", tif="post_only")
    assert (crossing.status, crossing.reason) == ("rejected", Reason.POST_ONLY_WOULD_TAKE)
    assert client.balances(taker) == balances
    client.cancel_order(maker, "BTC-USDT", ask.order_id)


def test_repeated_request_id_returns_original_result_and_places_once(client):
    account, _, _ = accounts_on_shards(client, 500)
    funded(client, account)
    order = client.order(account, "BTC-USDT", "buy", "0.1", "30000.00", request_id="retry-1")
    first, again = client.place_orders([order]), client.place_orders([order])
    assert first[0].order_id == again[0].order_id and first[0].events == again[0].events
    assert len(client.open_orders(account)) == 1
    client.cancel_order(account, "BTC-USDT", first[0].order_id)


def test_concurrent_random_workload_from_many_clients_conserves_every_asset(client):
    accounts = list(range(1_000, 1_040))
    funded(client, *accounts)
    rng = random.Random(11)
    print("seed 11")
    mids = {"BTC-USDT": 50_000 * 100, "ETH-USDT": 3_000 * 100}

    def random_order(i: int):
        market = rng.choice(list(mids))
        spec = client.config.markets[market]
        side = rng.choice((1, 2))
        ticks = mids[market] + rng.randint(-20, 20)
        tif = rng.choice((1, 1, 1, 2, 3, 4))
        return PlaceOrder(f"load:{i}", 0, rng.choice(accounts), market, side, 1, ticks * spec.tick_minor,
                          rng.randint(1, 30) * spec.lot_minor, tif, "", rng.randint(0, 3))

    async def sender(worker: int, results: list) -> None:
        for round_ in range(10):
            batch = [random_order(worker * 10_000 + round_ * 100 + k) for k in range(100)]
            answered = await client.execute_async(batch)
            results.extend(zip(batch, answered))
            cancels = [CancelOrder(f"cx:{worker}:{round_}:{k}", 0, cmd.account_id, cmd.market, e.order_id)
                       for k, (cmd, events) in enumerate(zip(batch, answered))
                       for e in events if type(e).__name__ == "OrderBooked" and rng.random() < 0.5]
            await client.execute_async(cancels)

    async def run() -> list:
        results: list = []
        await asyncio.gather(*(sender(w, results) for w in range(8)))
        return results

    results = asyncio.run(run())
    assert len(results) == 8_000
    assert sum(1 for _, events in results for e in events if type(e).__name__ == "Fill") > 100
    audit = client.audit()
    assert audit["ok"], audit
    assert all(ray.get([s.check_invariants.remote() for s in client.handles.shards]))
    for market in mids:
        book = client.order_book(market, 1)
        if book["bids"] and book["asks"]:
            assert book["bids"][0][0] < book["asks"][0][0]
    rejected = [e for _, events in results for e in events if type(e) is OrderRejected]
    assert all(Reason(e.reason) in Reason for e in rejected)


def test_malformed_commands_through_ray_are_rejected_and_read_nothing(client):
    account, _, _ = accounts_on_shards(client, 900)
    funded(client, account)
    client.deposit(account, "USDT", "1", request_id="secret-1")
    look_alike = ("secret-1", 0, account, "USDT", 1)          # a plain tuple, not a command
    unhashable = PlaceOrder(["list-id"], 0, account, "BTC-USDT", 1, 1, 50_000_000_000, 10_000, 1, "", 0)
    answers = client.execute([look_alike, unhashable])
    assert [[type(e).__name__ for e in events] for events in answers] == [["OrderRejected"]] * 2
    assert [events[0].reason for events in answers] == [Reason.MALFORMED_COMMAND, Reason.INVALID_REQUEST_ID]


def test_connected_client_sees_the_same_exchange_and_leaves_it_running_on_shutdown(client):
    from actors.client.exchange_client import ExchangeClient
    account, _, _ = accounts_on_shards(client, 1_100)
    funded(client, account)
    other = ExchangeClient.connect()
    assert other.balances(account) == client.balances(account)
    other.shutdown()
    assert client.deposit(account, "BTC", 1).ok                # the actors are still there
